"""A content-addressed local store of artifacts.

Layout under the store root (by default `<project>/.mcp-deploy/store`):

- `blobs/sha256/<hex>`: bytes, named by their digest (with `oci-layout` and `index.json` the
  store is also an OCI image layout);
- `artifacts/<hex>.json`: what each artifact is (an `Artifact` record);
- `checked/<hex>.json`: for a large blob, the file's (size, mtime, ctime, inode, device) when
  its sha256 was last found right, and when that was;
- `tmp/`: scratch space of builds and files being written, named after their process
  (`orchestrator.build.scratch`), on the store's own filesystem.

Contracts:

- A blob appears under its digest name only whole and right. It is written under `tmp/`,
  fsynced, hashed, and renamed into place atomically (then the directory is fsynced); a crash
  leaves at most a file under `tmp/`, which a later build removes once its process is dead.
  Records and other store files are replaced the same way.
- Nothing stored is reused unchecked. `check_blob` (and `find`, for a whole artifact)
  compares a blob's size with what is expected and its sha256 with its name. The hash is
  skipped only for a file unchanged since it was last hashed: same size, mtime, ctime, inode
  and device, and hashed more than `RACY_NS` after its last change (so a change within the
  same timestamp tick cannot hide). A blob that fails is deleted with its stamp and record,
  so the next build makes it again.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.artifacts import Artifact
from orchestrator.build.scratch import make_file, remove_leftovers, scratch_dir
from orchestrator.errors import OperationError

STAMP_MIN_SIZE = 1 << 20  # smaller blobs are hashed every time: cheaper than a stamp
RACY_NS = 2_000_000_000  # a stamp taken sooner after the file's last change is not trusted
MANIFEST_MAX = 4 << 20  # the largest blob read as an image manifest or index
_CHUNK = 1 << 20


class BlobState(enum.Enum):
    """What `ArtifactStore.check_blob` found."""

    MISSING = "missing"
    INTACT = "intact"
    DISCARDED = "discarded"  # it was there, damaged, and is now deleted


class _Damaged(Exception):
    """An artifact's blobs are not all there and right (the message says how)."""


def _now_ns() -> int:
    return time.time_ns()


def file_digest(path: Path) -> str:
    """`sha256:<hex>` of a file's bytes."""
    with path.open("rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def bytes_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _identity(status: os.stat_result) -> list[int]:
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_dev]


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class ArtifactStore:
    """The store is also an OCI image layout (`oci-layout`, `index.json`, `blobs/`), so the
    images in it can be read by any OCI tool (`skopeo copy oci:.mcp-deploy/store:NAME ...`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tidied = False

    # -- scratch space -----------------------------------------------------------------
    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def tidy(self) -> list[Path]:
        """Remove what builds that died left under `tmp/` (once per store object; later calls
        return []). Returns what was removed."""
        if self._tidied:
            return []
        self._tidied = True
        return remove_leftovers(self.tmp)

    def scratch(self, purpose: str) -> AbstractContextManager[Path]:
        """A scratch folder under `tmp/` for a `with` block, removed after it; on the store's
        filesystem, so files made there move into the store by rename."""
        self.tidy()
        return scratch_dir(self.tmp, purpose)

    # -- blobs -------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.root / "blobs" / algorithm / hexdigest

    def check_blob(self, digest: str, size: int | None = None) -> BlobState:
        """Is blob `digest` stored whole and right (`size` bytes, when given)? A damaged blob
        is discarded (`discard_blob`) and reported as such."""
        path = self.blob_path(digest)
        try:
            status = path.stat()
        except OSError:
            return BlobState.MISSING
        if not stat.S_ISREG(status.st_mode) or (size is not None and status.st_size != size):
            self.discard_blob(digest)
            return BlobState.DISCARDED
        if self._stamped(digest, status):
            return BlobState.INTACT
        if file_digest(path) != digest:
            self.discard_blob(digest)
            return BlobState.DISCARDED
        self._stamp(digest, status)
        return BlobState.INTACT

    def discard_blob(self, digest: str) -> None:
        """Delete blob `digest`, its stamp and its artifact record (whichever exist)."""
        hexdigest = digest.partition(":")[2]
        for path in (
            self.blob_path(digest),
            self.root / "checked" / f"{hexdigest}.json",
            self.root / "artifacts" / f"{hexdigest}.json",
        ):
            with suppress(FileNotFoundError):
                path.unlink()

    def add_bytes(self, data: bytes) -> tuple[str, int]:
        """Store `data` under its digest (idempotent; a damaged copy is replaced); returns
        (digest, size)."""
        digest = bytes_digest(data)
        if self.check_blob(digest, len(data)) is not BlobState.INTACT:
            self._install(digest, data)
        return digest, len(data)

    def add_file(self, path: Path) -> tuple[str, int, Path]:
        """Move `path` into the store; returns (digest, size, stored path). Idempotent: when
        the blob is already stored intact, `path` is just deleted. On the store's filesystem
        (e.g. from `scratch`) the file is fsynced and renamed into place; from elsewhere it is
        copied under `tmp/` first. Either way the digest name appears only once whole."""
        size = path.stat().st_size
        digest = file_digest(path)
        stored = self.blob_path(digest)
        if self.check_blob(digest, size) is BlobState.INTACT:
            path.unlink()
            return digest, size, stored
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        stored.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, stored)
        except OSError:  # another filesystem (EXDEV) or no right to move it: copy instead
            self._install(digest, path)
            path.unlink()
        else:
            _fsync_dir(stored.parent)
            self._stamp(digest, stored.stat())
        return digest, size, stored

    def add_file_copy(self, path: Path, digest: str) -> None:
        """Copy a file whose digest is known into the store (idempotent; a damaged copy is
        replaced). `OperationError` when the file's bytes do not hash to `digest`."""
        if self.check_blob(digest) is not BlobState.INTACT:
            self._install(digest, path)

    def _install(self, digest: str, source: bytes | Path) -> None:
        """Write `source` under `tmp/`, fsync, check it hashes to `digest`, rename it to the
        blob's name. Nothing is left behind when anything fails."""
        descriptor, temporary = make_file(self.tmp, "blob")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                os.fchmod(handle.fileno(), 0o644)  # mkstemp makes 0600; blobs are not secret
                if isinstance(source, bytes):
                    handle.write(source)
                    written = bytes_digest(source)
                else:
                    hasher = hashlib.sha256()
                    with source.open("rb") as reader:
                        while chunk := reader.read(_CHUNK):
                            hasher.update(chunk)
                            handle.write(chunk)
                    written = "sha256:" + hasher.hexdigest()
                handle.flush()
                os.fsync(handle.fileno())
            if written != digest:
                raise OperationError(
                    f"{source if isinstance(source, Path) else 'data'} is not blob {digest} "
                    f"(its bytes hash to {written})"
                )
            stored = self.blob_path(digest)
            stored.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, stored)
        except BaseException:
            with suppress(FileNotFoundError):
                temporary.unlink()
            raise
        _fsync_dir(stored.parent)
        self._stamp(digest, stored.stat())

    def _stamp_path(self, digest: str) -> Path:
        return self.root / "checked" / (digest.partition(":")[2] + ".json")

    def _stamp(self, digest: str, status: os.stat_result) -> None:
        """Remember that the file as `status` describes it hashed right, just now."""
        if status.st_size < STAMP_MIN_SIZE:
            return
        try:
            now = self.blob_path(digest).stat()
        except OSError:
            return
        if _identity(now) != _identity(status):  # changed while it was hashed: no stamp
            return
        stamp = {"file": _identity(status), "checked_ns": _now_ns()}
        self.write_json(self._stamp_path(digest), stamp, durable=False)

    def _stamped(self, digest: str, status: os.stat_result) -> bool:
        if status.st_size < STAMP_MIN_SIZE:
            return False
        try:
            stamp = json.loads(self._stamp_path(digest).read_text())
            checked = int(stamp["checked_ns"])
            same = stamp["file"] == _identity(status)
        except (OSError, ValueError, TypeError, KeyError):
            return False
        return same and checked - max(status.st_mtime_ns, status.st_ctime_ns) > RACY_NS

    # -- records -----------------------------------------------------------------------
    def write_json(self, path: Path, document: Any, *, durable: bool = True) -> None:
        """Replace `path` atomically with `document` as JSON (written under `tmp/`, fsynced
        unless `durable` is False, renamed into place)."""
        descriptor, temporary = make_file(self.tmp, "json")
        try:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(document, handle, indent=2, sort_keys=True)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, path)
        except BaseException:
            with suppress(FileNotFoundError):
                temporary.unlink()
            raise
        if durable:
            _fsync_dir(path.parent)

    def tag_image(self, name: str, digest: str, media_type: str, size: int) -> None:
        """Name an image in the layout's index.json (replacing an older image of that name)."""
        layout = self.root / "oci-layout"
        if not layout.is_file():
            self.write_json(layout, {"imageLayoutVersion": "1.0.0"})
        index_path = self.root / "index.json"
        index: dict[str, Any] = (
            json.loads(index_path.read_text())
            if index_path.exists()
            else {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
        )
        key = "org.opencontainers.image.ref.name"
        manifests = [
            m for m in index.get("manifests", []) if m.get("annotations", {}).get(key) != name
        ]
        manifests.append(
            {"mediaType": media_type, "digest": digest, "size": size, "annotations": {key: name}}
        )
        index["manifests"] = sorted(manifests, key=lambda m: m["annotations"][key])
        self.write_json(index_path, index)

    def keep(self, path: Path, kind: str, target: str, inputs_hash: str) -> Artifact:
        """Move a finished artifact file into the store (`add_file`) and record it."""
        digest, size, stored = self.add_file(path)
        artifact = Artifact(kind, target, digest, size, inputs_hash, stored)
        self.record(artifact)
        return artifact

    def record(self, artifact: Artifact) -> None:
        """Remember what the blob `artifact.digest` is."""
        hexdigest = artifact.digest.partition(":")[2]
        self.write_json(self.root / "artifacts" / f"{hexdigest}.json", artifact.to_dict())

    def find(
        self, kind: str, inputs_hash: str, progress: Callable[[str], None] | None = None
    ) -> Artifact | None:
        """A stored artifact of `kind` built from exactly these inputs, whose bytes are all
        there and right: a file artifact's blob has the recorded size and its digest; an
        image's manifest (or index) and every blob it names have their digests and sizes, and
        add up to the recorded size. A damaged artifact loses its record and its damaged
        blobs (saying so through `progress`), so the caller builds it again. Also the start
        of a build: leftovers of dead builds are removed from `tmp/` first."""
        report = progress or (lambda _step: None)
        removed = self.tidy()
        if removed:
            report(f"removed {len(removed)} leftover(s) of builds that ended from {self.tmp}")
        index = self.root / "artifacts"
        if not index.is_dir():
            return None
        for record in sorted(index.glob("*.json")):
            try:
                artifact = Artifact.from_dict(json.loads(record.read_text()))
            except (OSError, ValueError, TypeError, KeyError):
                record.unlink(missing_ok=True)
                report(f"discarded the unreadable artifact record {record.name}")
                continue
            if artifact.kind != kind or artifact.inputs_hash != inputs_hash:
                continue
            try:
                self._verify(artifact)
            except _Damaged as damage:
                record.unlink(missing_ok=True)
                report(
                    f"the stored {kind} {artifact.digest[:19]}… {damage}: discarded, "
                    "building it again"
                )
                continue
            return replace(artifact, path=self.blob_path(artifact.digest))
        return None

    def _verify(self, artifact: Artifact) -> None:
        """Raise `_Damaged` unless the artifact's bytes are all there and right."""
        state = self.check_blob(artifact.digest)
        if state is BlobState.MISSING:
            raise _Damaged("is missing its file")
        if state is BlobState.DISCARDED:
            raise _Damaged("was damaged (its bytes no longer match its digest)")
        actual = self.blob_path(artifact.digest).stat().st_size
        if actual == artifact.size:
            return
        total = self._image_total(artifact.digest)
        if total != artifact.size:
            raise _Damaged(f"has {total or actual} bytes where its record says {artifact.size}")

    def _image_total(self, digest: str) -> int | None:
        """Bytes of an image's every blob (as `targets.cloudrun.package` counts them), all
        checked; None when blob `digest` is not an image manifest or index."""
        path = self.blob_path(digest)
        if path.stat().st_size > MANIFEST_MAX:
            return None
        try:
            document = json.loads(path.read_bytes())
        except ValueError:
            return None
        if not isinstance(document, dict) or not ("manifests" in document or "config" in document):
            return None
        try:
            return self._tree_total(digest, document)
        except (KeyError, TypeError, ValueError):
            raise _Damaged("has an unreadable manifest") from None

    def _tree_total(self, digest: str, document: dict[str, Any]) -> int:
        total = self.blob_path(digest).stat().st_size
        for child in document.get("manifests", []):
            self._require(child["digest"], child["size"])
            child_document = json.loads(self.blob_path(child["digest"]).read_bytes())
            total += self._tree_total(child["digest"], child_document)
        if "config" in document:
            for descriptor in (document["config"], *document.get("layers", [])):
                self._require(descriptor["digest"], descriptor["size"])
                total += int(descriptor["size"])
        return total

    def _require(self, digest: str, size: int) -> None:
        state = self.check_blob(digest, int(size))
        if state is BlobState.MISSING:
            raise _Damaged(f"lacks its blob {digest[:19]}…")
        if state is BlobState.DISCARDED:
            raise _Damaged(f"has a damaged blob {digest[:19]}…")
