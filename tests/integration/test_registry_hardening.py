"""The registry client under hostile conditions, all on loopback:

- a registry that redirects blob downloads to another origin (object storage, a CDN) must not
  receive the registry's credentials there, while same-origin redirects keep them;
- a push through a proxy that loses replies (the registry completed the request, the client
  never heard) or fails requests at random must still succeed, and what it pushed must be
  pullable by digest from the real registry (`scripts/services start`, 127.0.0.1:5000).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import http.client
import json
import random
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import orchestrator.oci.registry as registry_module
from orchestrator.artifacts import Artifact
from orchestrator.deploy.artifact import build_artifacts
from orchestrator.oci.reference import Reference
from orchestrator.oci.registry import RegistryClient, RegistryError
from orchestrator.spec.loader import load_spec
from tests.conftest import EXAMPLE_DIR, MINIMAL

pytestmark = pytest.mark.integration

REGISTRY = "127.0.0.1:5000"
BLOB = b"layer bytes " * 1000
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
TOKEN = "token-7f3a"
USER, SECRET = "ci", "secret-c41d"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1") -> Iterator[str]:
    """Run `handler` on `host` (loopback), an ephemeral port; yields `host:port`."""
    server = ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


# -- credentials and redirects ------------------------------------------------------------
@dataclass
class Origin:
    """What one server saw: (path, Authorization or None) per request."""

    seen: list[tuple[str, str | None]] = field(default_factory=list)

    def authorizations(self) -> list[str | None]:
        return [authorization for _, authorization in self.seen]


def storage_handler(origin: Origin, challenge: bool) -> type[BaseHTTPRequestHandler]:
    """Object storage: serves BLOB to anyone (or answers 401 when `challenge`)."""

    class Storage(Quiet):
        def do_GET(self) -> None:
            origin.seen.append((self.path, self.headers.get("Authorization")))
            if challenge:
                self.reply(401, headers={"WWW-Authenticate": 'Basic realm="storage"'})
            else:
                self.reply(200, BLOB, {"Content-Type": "application/octet-stream"})

    return Storage


def registry_handler(
    origin: Origin, scheme: str, redirect: Callable[[str], str]
) -> type[BaseHTTPRequestHandler]:
    """A registry that wants `scheme` auth on /v2/ and answers the blob GET with a 307 to
    `redirect(own address)`; its /v2/internal/ path serves BLOB (with auth)."""

    class Registry(Quiet):
        def do_GET(self) -> None:
            authorization = self.headers.get("Authorization")
            origin.seen.append((self.path, authorization))
            me = f"127.0.0.1:{self.connection.getsockname()[1]}"
            if self.path.startswith("/token"):
                self.reply(200, json.dumps({"token": TOKEN}).encode())
                return
            wanted = f"Bearer {TOKEN}" if scheme == "bearer" else basic()
            if authorization != wanted:
                challenge = (
                    f'Bearer realm="http://{me}/token",service="test"'
                    if scheme == "bearer"
                    else 'Basic realm="test"'
                )
                self.reply(401, headers={"WWW-Authenticate": challenge})
            elif self.path == f"/v2/repo/blobs/{DIGEST}":
                self.reply(307, headers={"Location": redirect(me)})
            elif self.path.startswith("/v2/internal/"):
                self.reply(200, BLOB)
            else:
                self.reply(404)

    return Registry


def basic() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Docker's configuration, isolated: `login(registry)` stores USER/SECRET for it."""
    folder = tmp_path / "docker"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))

    def login(registry: str) -> None:
        auth = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
        (folder / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))

    return login


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
@pytest.mark.parametrize("storage_host", ["127.0.0.2", "127.0.0.1"])
def test_credentials_do_not_follow_a_redirect_to_another_origin(
    scheme: str, storage_host: str, docker_config: Callable[[str], None], tmp_path: Path
) -> None:
    # 127.0.0.1 on another port is another origin too.
    storage, registry = Origin(), Origin()
    with serve(storage_handler(storage, challenge=False), storage_host) as storage_address:
        target = f"http://{storage_address}/bucket/{DIGEST[7:]}?X-Signature=abc"
        handler = registry_handler(registry, scheme, lambda _me: target)
        with serve(handler) as registry_address:
            docker_config(registry_address)
            client = RegistryClient(registry_address, "http")
            client.get_blob("repo", DIGEST, tmp_path / "blob")  # verifies the digest
    assert (tmp_path / "blob").read_bytes() == BLOB
    assert storage.seen, "the redirect was followed"
    assert storage.authorizations() == [None] * len(storage.seen), storage.seen
    blob_requests = [a for path, a in registry.seen if path == f"/v2/repo/blobs/{DIGEST}"]
    assert blob_requests[-1] is not None, "the registry itself got the credentials"


@pytest.mark.parametrize("scheme", ["bearer", "basic"])
def test_credentials_follow_a_redirect_within_the_registry(
    scheme: str, docker_config: Callable[[str], None], tmp_path: Path
) -> None:
    registry = Origin()
    handler = registry_handler(registry, scheme, lambda me: f"http://{me}/v2/internal/{DIGEST}")
    with serve(handler) as registry_address:
        docker_config(registry_address)
        RegistryClient(registry_address, "http").get_blob("repo", DIGEST, tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == BLOB
    internal = [a for path, a in registry.seen if path.startswith("/v2/internal/")]
    assert internal and all(a is not None for a in internal), registry.seen


def test_a_challenge_from_another_origin_is_not_answered_with_the_registrys_credentials(
    docker_config: Callable[[str], None], tmp_path: Path
) -> None:
    storage, registry = Origin(), Origin()
    with serve(storage_handler(storage, challenge=True), "127.0.0.2") as storage_address:
        target = f"http://{storage_address}/bucket/{DIGEST[7:]}"
        with serve(registry_handler(registry, "basic", lambda _me: target)) as registry_address:
            docker_config(registry_address)
            with pytest.raises(RegistryError, match="HTTP 401"):
                RegistryClient(registry_address, "http").get_blob("repo", DIGEST, tmp_path / "b")
    assert storage.seen and storage.authorizations() == [None] * len(storage.seen), storage.seen


# -- pushes through a faulty proxy --------------------------------------------------------
Decide = Callable[[str, str], str]  # (method, path) -> "pass" | "drop-before" | ...


@dataclass
class Faults:
    """The proxy's policy and its log: (method, path, fault, upstream status) per request."""

    decide: Decide
    log: list[tuple[str, str, str, int | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self) -> str:
        counts = collections.Counter(f"{method} {fault}" for method, _, fault, _ in self.log)
        return f"{len(self.log)} requests: " + ", ".join(
            f"{name} x{count}" for name, count in sorted(counts.items())
        )

    def count(self, fault: str, method: str | None = None, path: str = "") -> int:
        return sum(1 for m, p, f, _ in self.log if f == fault and method in (None, m) and path in p)


def proxy_handler(faults: Faults) -> type[BaseHTTPRequestHandler]:
    """Forwards to the registry on 127.0.0.1:5000, except where `faults.decide` says:
    "drop-before" closes the connection without forwarding, "drop-after" forwards (the
    registry does the work) and then closes without a reply, "503" answers 503."""

    class Proxy(Quiet):
        def handle_request(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            with faults.lock:
                fault = faults.decide(self.command, self.path)
            status: int | None = None
            if fault == "503":
                self.reply(503, b'{"errors":[{"code":"UNAVAILABLE"}]}')
            elif fault != "drop-before":
                upstream = http.client.HTTPConnection("127.0.0.1", 5000, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                status = answer.status
                if fault == "pass":
                    self.send_response(answer.status)
                    for name, value in answer.getheaders():
                        if name.lower() not in HOP_BY_HOP:
                            self.send_header(name, value)
                    size = answer.getheader("Content-Length", "0")
                    self.send_header(
                        "Content-Length", size if self.command == "HEAD" else str(len(data))
                    )
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
            with faults.lock:
                faults.log.append((self.command, self.path, fault, status))
            self.close_connection = True

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_request

    return Proxy


def drop_replies_to_first_puts(count: int) -> Decide:
    dropped = 0

    def decide(method: str, path: str) -> str:
        nonlocal dropped
        if method == "PUT" and dropped < count:
            dropped += 1
            return "drop-after"
        return "pass"

    return decide


def fail_at_random(seed: int, rate: float) -> Decide:
    chance = random.Random(seed)

    def decide(method: str, path: str) -> str:
        if chance.random() < rate:
            return chance.choice(["drop-before", "drop-after", "503"])
        return "pass"

    return decide


def project_pushing_to(source: Path, destination: Path, repository: str) -> Path:
    """A copy of `source` (a folder with a spec) whose Lambda zip goes to `repository`."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns(".mcp-deploy"))
    spec = destination / "mcp-deploy.toml"
    text = spec.read_text()
    if "[targets.lambda]" not in text:
        text += '\n[targets.lambda]\narch = "x86_64"\n'
    head, _, tail = text.partition("[targets.lambda]\n")
    spec.write_text(f'{head}[targets.lambda]\nartifact_repository = "{repository}"\n{tail}')
    return spec


def assert_pullable_by_digest(location: str, artifact: Artifact, faults: Faults) -> None:
    """The manifest and both blobs come back from the real registry, verified by digest."""
    reference = Reference.parse(location)
    assert reference.digest is not None, location
    client = RegistryClient(REGISTRY, "http")
    data, _media_type, digest = client.get_manifest(reference.repository, reference.digest)
    assert digest == reference.digest, faults.summary()
    manifest = json.loads(data)
    assert manifest["artifactType"] == "application/vnd.mcp-deploy.lambda-zip.v1"
    (layer,) = manifest["layers"]
    assert (layer["digest"], layer["size"]) == (artifact.digest, artifact.size), faults.summary()
    assert client.fetch_blob(reference.repository, artifact.digest) == artifact.path.read_bytes()
    assert client.fetch_blob(reference.repository, manifest["config"]["digest"]) == b"{}"


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "BACKOFF_SECONDS", 0.01)


def push_through(faults: Faults, source: Path, tmp_path: Path) -> tuple[Artifact, str, str]:
    """Build the Lambda zip of `source` and push it through the faulty proxy to a fresh
    repository; (artifact, location as pushed, the same location on the real registry)."""
    repository = f"test-hardening/{uuid.uuid4().hex[:12]}"
    with serve(proxy_handler(faults)) as proxy:
        spec = project_pushing_to(source, tmp_path / "project", f"{proxy}/{repository}")
        steps: list[str] = []
        try:
            (artifact,) = build_artifacts(load_spec(spec), "lambda", steps.append, push=True)
        except RegistryError as error:
            pytest.fail(f"push failed: {error.message}\n{faults.summary()}\n" + "\n".join(steps))
    assert artifact.location is not None
    return artifact, artifact.location, artifact.location.replace(proxy, REGISTRY, 1)


def test_a_push_survives_lost_replies_to_its_puts(tmp_path: Path, quick_backoff: None) -> None:
    # The registry completes each of the first three PUTs (two blob uploads and the
    # manifest), but the client never hears back.
    faults = Faults(drop_replies_to_first_puts(3))
    source = tmp_path / "source"
    source.mkdir()
    (source / "mcp-deploy.toml").write_text(MINIMAL)
    (source / "demo").mkdir()
    (source / "demo" / "__init__.py").write_text("")
    (source / "demo" / "app.py").write_text("app = None\n")
    artifact, _pushed, location = push_through(faults, source, tmp_path)
    assert faults.count("drop-after", "PUT") == 3, faults.summary()
    assert faults.count("pass", "PUT", "/blobs/uploads/") == 0, (
        "no blob should be uploaded again: both arrived the first time; " + faults.summary()
    )
    assert faults.count("pass", "PUT", "/manifests/") == 1, faults.summary()
    assert_pullable_by_digest(location, artifact, faults)


# Whether a push survives depends on the draws: with RETRIES = 4 sends per request, four
# faults in a row on one request end it. Measured over seeds 0-199 (same request sequence as
# here): 186 of 200 pushes succeed (before the push_blob fix: 139 of 200, 52 of the failures
# BLOB_UPLOAD_UNKNOWN). These seeds include lost PUT replies; both failed before the fix.
@pytest.mark.parametrize("seed", [99, 1234])
def test_a_push_survives_a_proxy_failing_30_percent_of_requests(
    seed: int, tmp_path: Path, quick_backoff: None
) -> None:
    faults = Faults(fail_at_random(seed, 0.3))
    artifact, _pushed, location = push_through(faults, EXAMPLE_DIR, tmp_path)
    failed = len(faults.log) - faults.count("pass")
    assert failed > 0, f"the proxy injected no fault: {faults.summary()}"
    assert artifact.size > 1_000_000, "a real zip, several MB"
    assert_pullable_by_digest(location, artifact, faults)
    print(f"seed {seed}: {faults.summary()}")
