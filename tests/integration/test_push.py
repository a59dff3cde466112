"""Publishing by digest to a real registry on loopback (`scripts/services start`), and the
client's retries against a registry that fails transiently."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator.deploy.artifact import build_artifacts
from orchestrator.oci.registry import RegistryClient
from orchestrator.spec.loader import load_spec
from tests.conftest import EXAMPLE_DIR

pytestmark = pytest.mark.integration

REGISTRY = "127.0.0.1:5000"


def test_lambda_zip_is_pushed_as_an_oci_artifact(tmp_path: Path) -> None:
    project = tmp_path / "toolbox"
    shutil.copytree(EXAMPLE_DIR, project, ignore=shutil.ignore_patterns(".mcp-deploy"))
    spec = project / "mcp-deploy.toml"
    spec.write_text(
        spec.read_text().replace(
            'region = "eu-west-1"',
            f'region = "eu-west-1"\nartifact_repository = "{REGISTRY}/test-artifacts/toolbox"',
            1,
        )
    )
    steps: list[str] = []
    (artifact,) = build_artifacts(load_spec(spec), "lambda", steps.append, push=True)
    assert artifact.location is not None
    assert artifact.location.startswith(f"{REGISTRY}/test-artifacts/toolbox@sha256:")
    manifest_digest = artifact.location.rsplit("@", 1)[1]
    request = urllib.request.Request(
        f"http://{REGISTRY}/v2/test-artifacts/toolbox/manifests/{manifest_digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        manifest = json.loads(answer.read())
    assert manifest["artifactType"] == "application/vnd.mcp-deploy.lambda-zip.v1"
    assert manifest["layers"][0]["digest"] == artifact.digest
    with urllib.request.urlopen(
        f"http://{REGISTRY}/v2/test-artifacts/toolbox/blobs/{artifact.digest}", timeout=30
    ) as answer:
        assert "sha256:" + hashlib.sha256(answer.read()).hexdigest() == artifact.digest
    again: list[str] = []
    (same,) = build_artifacts(load_spec(spec), "lambda", again.append, push=True)
    assert same.location == artifact.location
    assert any("already there" in step for step in again)
    assert not any("uploaded" in step for step in again)


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first two HEAD requests, then 200."""

    calls = 0

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_HEAD(self) -> None:
        type(self).calls += 1
        self.send_response(503 if type(self).calls <= 2 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def flaky_registry() -> Iterator[str]:
    Flaky.calls = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_transient_failures_are_retried_with_backoff(flaky_registry: str) -> None:
    waits: list[float] = []
    client = RegistryClient(flaky_registry, "http", sleep=waits.append)
    assert client.has_blob("repo", "sha256:" + "0" * 64)
    assert Flaky.calls == 3
    assert waits == [0.5, 1.0]
