"""Copy an artifact by digest from one OCI repository to another: promotion between
environments whose registries differ, without rebuilding and without changing the digest.

The source is `registry/repo@sha256:…`. Its manifest (an image manifest, an OCI image index or
Docker manifest list, or an OCI artifact manifest such as the Lambda zip mcp-deploy pushes
with an `artifactType`) is read and checked against the digest. An index's manifests are
copied first, recursively. Then each blob (config, layers) the destination lacks is mounted
from the source repository when both are on the same registry (no bytes move), and otherwise
streamed from one registry to the other, its sha256 checked on the way and its last chunk held
back until it checks out, so a damaged blob never reaches the destination whole. Last, the
manifest is put by digest with its exact bytes and media type: the destination's digest is
the source's. A manifest the destination already has is not copied again (a registry accepts
a manifest only once everything it references is there).

Failures are `OperationError`s (mostly `RegistryError`s) that name the reference, blob or
repository concerned and whether the source or the destination failed.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import OperationError, input_error
from orchestrator.oci import registry
from orchestrator.oci.media import ACCEPT_ANY_MANIFEST
from orchestrator.oci.reference import Reference
from orchestrator.oci.registry import RegistryClient, RegistryError
from orchestrator.oci.verified_stream import Damaged, SourceBroke, VerifiedBody

Progress = Callable[[str], None]

ACCEPT = ACCEPT_ANY_MANIFEST + ", application/vnd.oci.artifact.manifest.v1+json"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def copy_by_digest(
    source: Reference, destination: Reference, progress: Progress = lambda _step: None
) -> str:
    """Copy the artifact `source` (`registry/repo@sha256:…`) into the repository
    `destination` (`registry/repo`, no tag or digest); returns `registry/repo@sha256:…` in
    the destination, the same digest. `progress` gets one line per manifest and blob
    (`mounted`, `copied`, `already there`). Raises `InputError` for a source without a
    digest or a destination with one (or a tag), `OperationError` when a registry fails."""
    if source.digest is None:
        raise input_error("source", f"'{source}' is not pinned by digest", "add @sha256:…")
    if destination.tag or destination.digest:
        raise input_error(
            "destination",
            f"'{destination}' must name a repository only",
            "leave out the tag and digest: the copy keeps the source's digest",
        )
    job = _Copy(
        source,
        destination,
        RegistryClient.for_reference(source),
        RegistryClient.for_reference(destination),
        progress,
    )
    _copy_manifest(job, source.digest, parent=None)
    return str(destination.with_digest(source.digest))


@dataclass
class _Copy:
    """One copy: where from, where to, a client for each side (tokens are per client), and
    the blobs done so far (an index's images share layers)."""

    source: Reference
    destination: Reference
    reader: RegistryClient
    writer: RegistryClient
    progress: Progress
    done: set[str] = field(default_factory=set)

    @property
    def same_registry(self) -> bool:
        """Both sides on one registry: blobs can be mounted rather than copied."""
        return (self.source.registry.lower(), self.source.scheme) == (
            self.destination.registry.lower(),
            self.destination.scheme,
        )

    @property
    def pull(self) -> str:
        return f"repository:{self.source.repository}:pull"

    @property
    def push(self) -> str:
        return f"repository:{self.destination.repository}:pull,push"


# -- failures, named ------------------------------------------------------------------------


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """Turn a `RegistryError` of the source into one that names `what` was being read."""
    try:
        yield
    except RegistryError as error:
        if error.status == 404:
            message = f"{what} was not found"
            hint = "check the source: promotion copies what an earlier deploy pushed"
        else:
            message = f"could not read {what}: {error.message}"
            hint = error.hint or "is the source registry reachable, and may you pull from it?"
        raise _renamed(error, message, hint) from None


@contextmanager
def _writing(job: _Copy, what: str) -> Iterator[None]:
    """Turn a `RegistryError` of the destination into one that names it and `what`."""
    try:
        yield
    except RegistryError as error:
        raise _refused(job, what, error) from None


def _refused(job: _Copy, what: str, error: RegistryError) -> RegistryError:
    message = f"the destination {job.destination} refused {what}: {error.message}"
    hint = error.hint or "check that the repository exists and that you may push to it"
    return _renamed(error, message, hint)


def _renamed(error: RegistryError, message: str, hint: str) -> RegistryError:
    renamed = RegistryError(message, hint, error.detail)
    renamed.status = error.status
    return renamed


# -- manifests ------------------------------------------------------------------------------


def _copy_manifest(job: _Copy, digest: str, parent: str | None) -> None:
    """Copy manifest `digest` and everything it references, unless the destination has it."""
    if _has_manifest(job, digest):
        job.progress(f"already there: manifest {digest[:19]}")
        return
    data, media_type, document = _read_manifest(job, digest, parent)
    for child in document.get("manifests") or []:
        _copy_manifest(job, _descriptor(job, digest, child)[0], parent=digest)
    for descriptor in _blobs(document):
        child_digest, size = _descriptor(job, digest, descriptor)
        _copy_blob(job, child_digest, size)
    _put_manifest(job, digest, data, media_type)


def _has_manifest(job: _Copy, digest: str) -> bool:
    with _writing(job, f"a look-up of the manifest {digest}"):
        answer = job.writer.request(
            "HEAD",
            f"/v2/{job.destination.repository}/manifests/{digest}",
            headers={"Accept": ACCEPT},
            ok=(200, 404),
            scope=job.push,
        )
    return answer.status == 200


def _read_manifest(
    job: _Copy, digest: str, parent: str | None
) -> tuple[bytes, str, dict[str, Any]]:
    """(exact bytes, media type, parsed) of the source manifest `digest`, bytes checked."""
    where = str(job.source.with_digest(digest))
    what = where if parent is None else f"{where} (listed in the index {parent})"
    with _reading(what):
        answer = job.reader.request(
            "GET",
            f"/v2/{job.source.repository}/manifests/{digest}",
            headers={"Accept": ACCEPT},
            scope=job.pull,
        )
    actual = "sha256:" + hashlib.sha256(answer.body).hexdigest()
    if actual != digest:
        raise OperationError(
            f"{what}: the source registry served a manifest whose bytes hash to {actual}",
            hint="the source registry (or something between it and you) changed the manifest",
        )
    try:
        document = json.loads(answer.body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise OperationError(f"{what} is not a JSON manifest")
    declared = document.get("mediaType")
    media_type = declared or answer.headers.get("content-type", "").split(";")[0].strip()
    if not media_type:
        raise OperationError(f"{what}: the source registry gave no media type for it")
    return answer.body, str(media_type), document


def _blobs(document: dict[str, Any]) -> list[Any]:
    """The blob descriptors of a manifest: config, layers (and an artifact's blobs)."""
    config = [document["config"]] if document.get("config") else []
    return [*config, *(document.get("layers") or []), *(document.get("blobs") or [])]


def _descriptor(job: _Copy, manifest: str, descriptor: Any) -> tuple[str, int]:
    """(digest, size) of a descriptor in manifest `manifest`, checked to be usable."""
    digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
    size = descriptor.get("size") if isinstance(descriptor, dict) else None
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise OperationError(
            f"{job.source.with_digest(manifest)} refers to {digest!r}: only sha256 digests "
            "can be copied"
        )
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise OperationError(f"{job.source.with_digest(manifest)}: {digest} has no valid size")
    return digest, size


def _put_manifest(job: _Copy, digest: str, data: bytes, media_type: str) -> None:
    """Put the exact bytes by digest; the registry must report the same digest."""
    with _writing(job, f"the manifest {digest}"):
        answer = job.writer.request(
            "PUT",
            f"/v2/{job.destination.repository}/manifests/{digest}",
            body=data,
            headers={"Content-Type": media_type},
            ok=(201,),
            scope=job.push,
        )
    stored = answer.headers.get("docker-content-digest")
    if stored and stored != digest:
        raise OperationError(
            f"the destination {job.destination} stored the manifest {digest} as {stored}",
            hint="the registry rewrote the manifest; promotion needs one that keeps bytes as given",
        )
    job.progress(f"manifest: {digest[:19]} ({media_type})")


# -- blobs ----------------------------------------------------------------------------------


def _copy_blob(job: _Copy, digest: str, size: int) -> None:
    """Make blob `digest` present in the destination: already there, mounted, or copied."""
    if digest in job.done:
        return
    with _writing(job, f"a look-up of blob {digest}"):
        present = job.writer.has_blob(job.destination.repository, digest)
    if present:
        job.progress(f"already there: {digest[:19]} ({size} bytes)")
    elif job.same_registry and _mount(job, digest):
        job.progress(f"mounted: {digest[:19]} ({size} bytes) from {job.source.repository}")
    else:
        _stream(job, digest, size)
        job.progress(f"copied: {digest[:19]} ({size} bytes)")
    job.done.add(digest)


def _mount(job: _Copy, digest: str) -> bool:
    """Cross-repository mount; True when the registry mounted the blob (201). False when it
    would not: 202 (it opened an upload session instead, cancelled here) or 401/403 (these
    credentials may not read the source). Then the blob is copied instead."""
    uploads = f"/v2/{job.destination.repository}/blobs/uploads/"
    query = urllib.parse.urlencode({"mount": digest, "from": job.source.repository})
    with _writing(job, f"a mount of blob {digest}"):
        try:
            answer = job.writer.request("POST", f"{uploads}?{query}", ok=(201, 202), scope=job.push)
        except RegistryError as error:
            if error.status in (401, 403):
                return False
            raise
    if answer.status == 201:
        return True
    location = answer.headers.get("location")
    if location:
        with suppress(RegistryError):  # best effort: an abandoned session expires anyway
            job.writer.request(
                "DELETE",
                urllib.parse.urljoin(job.writer.base + uploads, location),
                ok=(200, 202, 204, 404),
                scope=job.push,
                attempts=1,
            )
    return False


def _stream(job: _Copy, digest: str, size: int) -> None:
    """Stream blob `digest` from the source into the destination, verified on the way.

    Each attempt opens a new upload session and streams the blob into it from a fresh GET.
    An attempt whose source stream broke off, or whose PUT got no answer, 404 (session gone),
    408, 429 or 5xx, is tried again (`registry.RETRIES` attempts in all, with backoff, asking
    the destination first whether the blob arrived after all). Damaged bytes are not retried:
    `OperationError` naming the blob and the source registry."""
    last: Exception | None = None
    for attempt in range(registry.RETRIES):
        if attempt:
            time.sleep(registry.BACKOFF_SECONDS * 2 ** (attempt - 1))
            with _writing(job, f"a look-up of blob {digest}"):
                if job.writer.has_blob(job.destination.repository, digest):
                    return
        failure = _stream_once(job, digest, size)
        if failure is None:
            return
        last = failure
    assert last is not None
    if isinstance(last, SourceBroke):
        raise OperationError(
            f"reading blob {digest} from {job.source.registry}/{job.source.repository} "
            f"broke off {registry.RETRIES} times: {last}",
            hint="is the source registry reachable? transient errors were retried",
        )
    raise last


def _stream_once(job: _Copy, digest: str, size: int) -> Exception | None:
    """One attempt of `_stream`: None when the blob arrived, the failure when it is worth
    another attempt; other failures raise. The source is opened first, so a blob missing
    there opens no upload session in the destination."""
    source = f"{job.source.registry}/{job.source.repository}"
    with _reading(f"blob {digest} of {source}"):
        answer = job.reader.open_stream(
            "GET", f"/v2/{job.source.repository}/blobs/{digest}", scope=job.pull
        )
    with answer:
        uploads = f"/v2/{job.destination.repository}/blobs/uploads/"
        with _writing(job, f"an upload of blob {digest}"):
            start = job.writer.request("POST", uploads, ok=(202,), scope=job.push)
        location = start.headers.get("location", "")
        location = urllib.parse.urljoin(job.writer.base + uploads, location)
        separator = "&" if "?" in location else "?"
        try:
            job.writer.open_stream(
                "PUT",
                f"{location}{separator}digest={urllib.parse.quote(digest)}",
                body=VerifiedBody(answer, digest, size),
                size=size,
                headers={"Content-Type": "application/octet-stream"},
                ok=(201,),
                scope=job.push,
            ).close()
        except Damaged as error:
            raise OperationError(
                f"blob {digest} from {source} is corrupt: {error}; nothing was stored in "
                f"{job.destination}",
                hint="the source registry (or something between it and you) serves bytes "
                "that do not match the digest",
            ) from None
        except SourceBroke as error:
            return error.with_traceback(None)
        except RegistryError as error:
            refused = _refused(job, f"the upload of blob {digest}", error)
            if error.status is None or error.status in (404, 408, 429) or error.status >= 500:
                return refused
            raise refused from None
    return None
