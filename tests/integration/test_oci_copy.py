"""Copy by digest (`orchestrator.oci.copy.copy_by_digest`) between real registries, all on
loopback: the registry of `scripts/services start` (127.0.0.1:5000) and a second
docker-registry this module starts on another port (own storage in a temporary folder,
stopped by PID at the end).

What is copied: a multi-layer image, an OCI index of two images sharing layers, and a Lambda
zip pushed as an OCI artifact (mcp-deploy's own `push_artifact`). The tests prove that:

- within one registry every blob is mounted, none uploaded (the client's requests are
  counted), and a second copy only finds everything there;
- across registries the blobs are streamed (a 24 MiB layer without holding it in memory) and
  the destination has the same digest, the same manifest bytes and the same blob bytes;
- a registry that will not mount (202) gets the blobs copied instead; a source whose blob
  answer breaks off is read again; blob downloads redirected to another origin are followed;
- a source serving a damaged blob or manifest, a missing source and a destination that
  refuses all fail with an `OperationError` naming the blob, reference or destination.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import random
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import orchestrator.oci.registry as registry_module
from orchestrator.artifacts import Artifact
from orchestrator.build.store import ArtifactStore
from orchestrator.errors import InputError, OperationError
from orchestrator.oci import media
from orchestrator.oci.copy import ACCEPT, copy_by_digest
from orchestrator.oci.image import canonical
from orchestrator.oci.push import push_artifact
from orchestrator.oci.reference import Reference
from orchestrator.oci.registry import RegistryClient, RegistryError
from tests.support.registry import second_registry as start_second_registry

pytestmark = pytest.mark.integration

REGISTRY = "127.0.0.1:5000"
LAMBDA_TYPES = ("application/vnd.mcp-deploy.lambda-zip.v1", "application/zip")
KINDS = ("image", "index", "lambda")
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fresh(prefix: str) -> str:
    """A repository name no other test (or run) uses."""
    return f"test-copy/{prefix}-{uuid.uuid4().hex[:10]}"


# -- what is copied --------------------------------------------------------------------------


@dataclass
class Source:
    """An artifact in the local registry: its reference, and every manifest and blob."""

    reference: Reference
    manifests: dict[str, bytes] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        assert self.reference.digest is not None
        return self.reference.digest


def push_image(client: RegistryClient, repository: str, layers: list[bytes], arch: str) -> Source:
    """An image manifest with a config and `layers` (bytes a registry does not look into)."""
    config = canonical(
        {
            "architecture": arch,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer) for layer in layers]},
        }
    )
    for blob in (config, *layers):
        client.push_blob(repository, digest_of(blob), blob)
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "config": {
                "mediaType": media.OCI_CONFIG,
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": media.OCI_LAYER_GZIP, "digest": digest_of(blob), "size": len(blob)}
                for blob in layers
            ],
        }
    )
    digest = client.put_manifest(repository, digest_of(manifest), manifest, media.OCI_MANIFEST)
    source = Source(Reference(REGISTRY, repository, None, digest), {digest: manifest})
    source.blobs = {digest_of(blob): blob for blob in (config, *layers)}
    return source


def push_index(client: RegistryClient, repository: str, images: list[Source]) -> Source:
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": media.OCI_MANIFEST,
                    "digest": image.digest,
                    "size": len(image.manifests[image.digest]),
                    "platform": {"os": "linux", "architecture": arch},
                }
                for image, arch in zip(images, ("amd64", "arm64"), strict=True)
            ],
        }
    )
    digest = client.put_manifest(repository, digest_of(index), index, media.OCI_INDEX)
    source = Source(Reference(REGISTRY, repository, None, digest), {digest: index})
    for image in images:
        source.manifests |= image.manifests
        source.blobs |= image.blobs
    return source


def push_lambda_zip(folder: Path, repository: str) -> Source:
    """A real zip, pushed the way mcp-deploy pushes a Lambda artifact."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
        archive.writestr("data.bin", random.Random(7).randbytes(150_000))
    path = folder / "lambda.zip"
    path.write_bytes(buffer.getvalue())
    store = ArtifactStore(folder / "store")
    digest, size, stored = store.add_file(path)
    artifact = Artifact("lambda-zip", "lambda", digest, size, "test", stored)
    location = push_artifact(store, artifact, Reference(REGISTRY, repository), LAMBDA_TYPES)
    reference = Reference.parse(location)
    client = RegistryClient(REGISTRY, "http")
    assert reference.digest is not None
    manifest, _, _ = client.get_manifest(repository, reference.digest)
    source = Source(reference, {reference.digest: manifest})
    source.blobs = {digest: buffer.getvalue(), digest_of(b"{}"): b"{}"}
    return source


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Source]:
    """The three kinds, pushed to the local registry once for the module."""
    client = RegistryClient(REGISTRY, "http")
    repository = fresh("source")
    chance = random.Random(2026)
    shared = [chance.randbytes(300_000), chance.randbytes(200_000)]
    amd64 = push_image(client, repository, [*shared, chance.randbytes(100_000)], "amd64")
    arm64 = push_image(client, repository, [*shared, chance.randbytes(120_000)], "arm64")
    return {
        "image": amd64,
        "index": push_index(client, repository, [amd64, arm64]),
        "lambda": push_lambda_zip(tmp_path_factory.mktemp("lambda"), repository),
    }


# -- a second registry, and a stand-in in front of the first --------------------------------


@pytest.fixture(scope="module")
def second_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another registry on a loopback port (`host:port`), stopped when the module is done."""
    with start_second_registry(tmp_path_factory.mktemp("registry2")) as address:
        yield address


@dataclass
class Behaviour:
    """How the stand-in in front of the local registry misbehaves."""

    no_mounts: bool = False  # a mount request goes on as a plain upload request: 202
    refuse_writes: bool = False  # POST, PUT, PATCH answer 403 DENIED
    corrupt: str = ""  # a blob or manifest digest served with one byte changed
    break_once: str = ""  # a blob whose first GET breaks off halfway through the body
    redirect_blobs: bool = False  # blob GETs answer 307 to the registry itself (elsewhere)
    broke: bool = False


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


def stand_in(behaviour: Behaviour) -> type[BaseHTTPRequestHandler]:
    """Forwards every request to the registry on 127.0.0.1:5000, except as `behaviour` says.
    The Host header is passed on, so the registry's upload locations point at the stand-in."""

    class StandIn(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return None

        def handle_request(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            path = self.path
            if behaviour.refuse_writes and self.command in ("POST", "PUT", "PATCH"):
                self.answer(403, {}, b'{"errors":[{"code":"DENIED","message":"no pushes"}]}')
                return
            if behaviour.redirect_blobs and self.command == "GET" and "/blobs/sha256:" in path:
                self.answer(307, {"Location": f"http://{REGISTRY}{path}"}, b"")
                return
            if behaviour.no_mounts and "mount=" in path:
                path = path.split("?", 1)[0]
            upstream = http.client.HTTPConnection("127.0.0.1", 5000, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            upstream.request(self.command, path, body=body, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
            upstream.close()
            if behaviour.corrupt and path.endswith(behaviour.corrupt) and self.command == "GET":
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            if behaviour.break_once and path.endswith(behaviour.break_once) and not behaviour.broke:
                behaviour.broke = True
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.close_connection = True
                return
            kept = {k: v for k, v in reply.getheaders() if k.lower() not in HOP_BY_HOP}
            size = reply.getheader("Content-Length", "0") if self.command == "HEAD" else None
            self.answer(reply.status, kept, data, size)

        def answer(
            self, status: int, headers: dict[str, str], data: bytes, size: str | None = None
        ) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", size or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.close_connection = True

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_request

    return StandIn


@contextmanager
def serve(behaviour: Behaviour) -> Iterator[str]:
    """The stand-in on an ephemeral loopback port; yields `host:port`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), stand_in(behaviour))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# -- observing the client -------------------------------------------------------------------


@dataclass
class Traffic:
    """Every request the registry client sent: (method, URL)."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def blob_uploads(self) -> list[tuple[str, str]]:
        """Requests that carry blob bytes (PUT or PATCH to an upload session)."""
        return [(m, u) for m, u in self.calls if m in ("PUT", "PATCH") and "/blobs/uploads/" in u]

    def mounts(self) -> list[str]:
        return [u for m, u in self.calls if m == "POST" and "mount=" in u]

    def count(self, method: str, part: str = "") -> int:
        return sum(1 for m, u in self.calls if m == method and part in u)


@pytest.fixture
def traffic(monkeypatch: pytest.MonkeyPatch) -> Traffic:
    """Counts the registry client's requests (every one goes through its opener)."""
    seen = Traffic()
    real = registry_module._OPENER

    class Counting:
        def open(self, request: urllib.request.Request, timeout: float = 60) -> Any:
            seen.calls.append((request.get_method(), request.full_url))
            return real.open(request, timeout=timeout)

    monkeypatch.setattr(registry_module, "_OPENER", Counting())
    return seen


def raw_manifest(registry: str, repository: str, digest: str) -> bytes:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{digest}", headers={"Accept": ACCEPT}
    )
    with _HTTP.open(request, timeout=30) as answer:
        data: bytes = answer.read()
        return data


def status_of(url: str, accept: str = ACCEPT) -> int:
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": accept})
    try:
        with _HTTP.open(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def assert_same_artifact(source: Source, location: str) -> None:
    """The destination serves every manifest with the same bytes and every blob."""
    copied = Reference.parse(location)
    assert copied.digest == source.digest, location
    client = RegistryClient(copied.registry, "http")
    for digest, data in source.manifests.items():
        assert raw_manifest(copied.registry, copied.repository, digest) == data, digest
    for digest, data in source.blobs.items():
        assert client.fetch_blob(copied.repository, digest) == data, digest


# -- within one registry: mounts -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_within_a_registry_every_blob_is_mounted(
    kind: str, sources: dict[str, Source], traffic: Traffic
) -> None:
    source = sources[kind]
    destination = Reference(REGISTRY, fresh(f"mount-{kind}"))
    steps: list[str] = []
    location = copy_by_digest(source.reference, destination, steps.append)
    assert location == f"{destination}@{source.digest}"
    assert traffic.blob_uploads() == [], "blobs were uploaded, not mounted"
    assert len(traffic.mounts()) == len(source.blobs), traffic.calls
    assert sum(step.startswith("mounted: ") for step in steps) == len(source.blobs), steps
    assert sum(step.startswith("manifest: ") for step in steps) == len(source.manifests), steps
    assert_same_artifact(source, location)

    traffic.calls.clear()
    again: list[str] = []
    assert copy_by_digest(source.reference, destination, again.append) == location
    assert again == [f"already there: manifest {source.digest[:19]}"]
    assert [m for m, _ in traffic.calls] == ["HEAD"], "the manifest there means all is there"


def test_a_registry_that_will_not_mount_gets_the_blobs_copied(
    sources: dict[str, Source], traffic: Traffic
) -> None:
    source = sources["index"]
    with serve(Behaviour(no_mounts=True)) as stand_in_address:
        origin = Reference(stand_in_address, source.reference.repository, None, source.digest)
        destination = Reference(stand_in_address, fresh("no-mount"))
        steps: list[str] = []
        location = copy_by_digest(origin, destination, steps.append)
    assert len(traffic.mounts()) == len(source.blobs), "a mount was asked for each blob"
    assert traffic.count("DELETE", "/blobs/uploads/") == len(source.blobs), "sessions cancelled"
    assert len(traffic.blob_uploads()) == len(source.blobs), traffic.calls
    assert sum(step.startswith("copied: ") for step in steps) == len(source.blobs), steps
    assert not any(step.startswith("mounted") for step in steps), steps
    assert_same_artifact(source, location.replace(stand_in_address, REGISTRY, 1))


# -- across registries: streamed, verified ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_across_registries_the_digest_and_bytes_are_kept(
    kind: str, sources: dict[str, Source], second_registry: str, traffic: Traffic
) -> None:
    source = sources[kind]
    destination = Reference(second_registry, f"promoted/{kind}")
    steps: list[str] = []
    location = copy_by_digest(source.reference, destination, steps.append)
    assert location == f"{second_registry}/promoted/{kind}@{source.digest}"
    assert traffic.mounts() == [], "no mount across registries"
    assert len(traffic.blob_uploads()) == len(source.blobs), traffic.calls
    assert sum(step.startswith("copied: ") for step in steps) == len(source.blobs), steps
    assert_same_artifact(source, location)
    # The destination computes the same digest from what it stores.
    request = urllib.request.Request(
        f"http://{second_registry}/v2/promoted/{kind}/manifests/{source.digest}",
        method="HEAD",
        headers={"Accept": ACCEPT},
    )
    with _HTTP.open(request, timeout=30) as answer:
        assert answer.headers["Docker-Content-Digest"] == source.digest

    again: list[str] = []
    assert copy_by_digest(source.reference, destination, again.append) == location
    assert again == [f"already there: manifest {source.digest[:19]}"]


def test_a_large_blob_is_streamed_not_held_in_memory(second_registry: str) -> None:
    client = RegistryClient(REGISTRY, "http")
    repository = fresh("large")
    layer = random.Random(24).randbytes(24 << 20)
    source = push_image(client, repository, [layer], "amd64")
    del layer
    tracemalloc.start()
    try:
        started = time.perf_counter()
        location = copy_by_digest(source.reference, Reference(second_registry, "large/image"))
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"copying 24 MiB took {peak / 2**20:.1f} MiB of memory at its peak"
    assert_same_artifact(source, location)
    print(f"24 MiB across registries in {elapsed:.2f}s, peak {peak / 2**20:.1f} MiB")


def test_a_source_that_breaks_off_mid_blob_is_read_again(
    sources: dict[str, Source],
    second_registry: str,
    traffic: Traffic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry_module, "BACKOFF_SECONDS", 0.01)
    source = sources["image"]
    layer = json.loads(source.manifests[source.digest])["layers"][0]["digest"]
    behaviour = Behaviour(break_once=layer)
    destination = Reference(second_registry, fresh("broken-off"))
    with serve(behaviour) as stand_in_address:
        origin = Reference(stand_in_address, source.reference.repository, None, source.digest)
        steps: list[str] = []
        location = copy_by_digest(origin, destination, steps.append)
    assert behaviour.broke
    assert traffic.count("GET", f"/blobs/{layer}") == 2, traffic.calls
    assert sum(step.startswith("copied: ") for step in steps) == len(source.blobs), steps
    assert_same_artifact(source, location)


def test_blob_downloads_redirected_to_another_origin_are_followed(
    sources: dict[str, Source], second_registry: str, traffic: Traffic
) -> None:
    source = sources["index"]
    with serve(Behaviour(redirect_blobs=True)) as stand_in_address:
        origin = Reference(stand_in_address, source.reference.repository, None, source.digest)
        location = copy_by_digest(origin, Reference(second_registry, fresh("redirected")))
    blob_gets = [url for method, url in traffic.calls if method == "GET" and "/blobs/" in url]
    assert len(blob_gets) == len(source.blobs), traffic.calls
    assert all(url.startswith(f"http://{stand_in_address}/") for url in blob_gets)
    assert_same_artifact(source, location)


# -- failures, named -------------------------------------------------------------------------


def test_a_corrupt_blob_fails_naming_the_blob_and_the_registry(
    sources: dict[str, Source], second_registry: str
) -> None:
    source = sources["image"]
    layer = json.loads(source.manifests[source.digest])["layers"][1]["digest"]
    destination = Reference(second_registry, fresh("corrupt"))
    with serve(Behaviour(corrupt=layer)) as stand_in_address:
        origin = Reference(stand_in_address, source.reference.repository, None, source.digest)
        with pytest.raises(OperationError) as failure:
            copy_by_digest(origin, destination)
    message = failure.value.render()
    assert layer in message and stand_in_address in message, message
    assert "corrupt" in message and "hash to" in message, message
    assert "Traceback" not in message
    base = f"http://{second_registry}/v2/{destination.repository}"
    assert status_of(f"{base}/blobs/{layer}") == 404, "the damaged blob was not stored"
    assert status_of(f"{base}/manifests/{source.digest}") == 404


def test_a_manifest_that_does_not_match_its_digest_fails(
    sources: dict[str, Source], second_registry: str
) -> None:
    source = sources["index"]
    with serve(Behaviour(corrupt=source.digest)) as stand_in_address:
        origin = Reference(stand_in_address, source.reference.repository, None, source.digest)
        with pytest.raises(OperationError) as failure:
            copy_by_digest(origin, Reference(second_registry, fresh("bad-manifest")))
    assert str(origin) in failure.value.message and "hash to" in failure.value.message


def test_a_missing_source_is_named(second_registry: str) -> None:
    source = Reference(REGISTRY, fresh("missing"), None, "sha256:" + "ab" * 32)
    with pytest.raises(OperationError) as failure:
        copy_by_digest(source, Reference(second_registry, "anything"))
    assert failure.value.message == f"{source} was not found"


def test_a_missing_image_in_an_index_is_named(second_registry: str) -> None:
    client = RegistryClient(REGISTRY, "http")
    repository = fresh("partial-index")
    chance = random.Random(5)
    images = [push_image(client, repository, [chance.randbytes(1000)], arch) for arch in KINDS[:2]]
    index = push_index(client, repository, images)
    missing = images[1].digest
    client.request("DELETE", f"/v2/{repository}/manifests/{missing}", ok=(202,))
    with pytest.raises(OperationError) as failure:
        copy_by_digest(index.reference, Reference(second_registry, fresh("partial")))
    assert failure.value.message == (
        f"{REGISTRY}/{repository}@{missing} (listed in the index {index.digest}) was not found"
    )


def test_a_refusing_destination_is_named(sources: dict[str, Source]) -> None:
    source = sources["image"]
    with serve(Behaviour(refuse_writes=True)) as stand_in_address:
        destination = Reference(stand_in_address, fresh("refused"))
        with pytest.raises(RegistryError) as failure:
            copy_by_digest(source.reference, destination)
    assert failure.value.status == 403
    assert failure.value.message.startswith(f"the destination {destination} refused ")
    assert "DENIED" in (failure.value.detail or "")


def test_references_must_say_what_to_copy_and_where() -> None:
    with pytest.raises(InputError, match="not pinned by digest"):
        copy_by_digest(Reference(REGISTRY, "a", "v1"), Reference(REGISTRY, "b"))
    with pytest.raises(InputError, match="repository only"):
        copy_by_digest(
            Reference(REGISTRY, "a", None, "sha256:" + "0" * 64), Reference(REGISTRY, "b", "v1")
        )
