"""The OCI image is real: assembled without a daemon on a base pulled by digest, pushed to the
local registry, pulled into Docker by digest and run as uid 65532 on a read-only root, it
serves MCP to the official client, enforces bearer auth and stops cleanly on SIGTERM; two clean
builds give the same digest.

Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.artifacts import Artifact
from orchestrator.build.pipeline import build
from orchestrator.deploy.artifact import build_artifacts
from orchestrator.spec.loader import load_spec
from tests.integration.test_example_servers import mcp_session
from tests.support.example import example_copy
from tests.support.net import free_port, wait_for_port

pytestmark = pytest.mark.integration

TOKEN = "image-token-canary-5b1e"
API_KEY = "image-apikey-canary-c7a2"


def docker(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=180, env=env, check=False
    )


def image_project(destination: Path) -> Path:
    """The example, with the test base image and the local registry."""
    spec = example_copy(destination, image_base=True, registry="127.0.0.1:5000/mcp")
    (destination / ".env").write_text(f"TOOLBOX_API_KEY={API_KEY}\n")
    return spec


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    spec = image_project(tmp_path_factory.mktemp("image") / "toolbox")
    (artifact,) = build_artifacts(load_spec(spec), "cloudrun", push=True)
    return artifact


@pytest.fixture(scope="module")
def pulled(pushed: Artifact) -> str:
    """The pushed image, pulled into Docker by digest."""
    assert pushed.location is not None
    done = docker("pull", pushed.location)
    assert done.returncode == 0, done.stderr
    return pushed.location


@pytest.fixture(scope="module")
def container(pulled: str) -> Iterator[tuple[str, str]]:
    port = free_port()
    env = {**os.environ, "MCP_AUTH_TOKEN": TOKEN, "TOOLBOX_API_KEY": API_KEY}
    started = docker(
        "run",
        "-d",
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-e",
        f"PORT={port}",
        "-e",
        "MCP_DEPLOY_HOST=127.0.0.1",
        "-e",
        "GREETING=Hi",
        "-e",
        "MCP_AUTH_TOKEN",
        "-e",
        "TOOLBOX_API_KEY",
        pulled,
        env=env,
    )
    assert started.returncode == 0, started.stderr
    container_id = started.stdout.strip()
    try:
        wait_for_port(
            "127.0.0.1", port, timeout=60, describe=lambda: docker("logs", container_id).stderr
        )
        yield container_id, f"http://127.0.0.1:{port}/mcp"
    finally:
        docker("rm", "-f", container_id)


def test_image_config(pulled: str) -> None:
    inspected = docker("image", "inspect", pulled)
    config = json.loads(inspected.stdout)[0]["Config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["python3", "-m", "mcp_deploy_serve"]
    assert "dev.mcp-deploy.spec-hash" in config["Labels"]
    assert not any(TOKEN in item or API_KEY in item for item in config["Env"])


def test_container_speaks_mcp_with_its_secret(container: tuple[str, str]) -> None:
    _, url = container
    seen = mcp_session(url, [("greet", {"name": "x"}), ("secret_fingerprint", {})], token=TOKEN)
    assert seen["server"] == "toolbox"
    assert seen["results"][0] == {"result": "Hi, x!"}
    assert seen["results"][1]["sha256_12"] == hashlib.sha256(API_KEY.encode()).hexdigest()[:12]


def test_container_refuses_a_wrong_token(container: tuple[str, str]) -> None:
    import urllib.error
    import urllib.request

    _, url = container
    request = urllib.request.Request(
        url,
        data=b"{}",
        method="POST",
        headers={"Authorization": "Bearer nope", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 401


def test_sigterm_stops_it_gracefully(container: tuple[str, str]) -> None:
    container_id, _ = container
    stopped = docker("stop", "--time", "10", container_id)
    assert stopped.returncode == 0
    state = json.loads(docker("inspect", container_id).stdout)[0]["State"]
    assert state["ExitCode"] == 0, docker("logs", container_id).stderr[-2000:]
    logs = docker("logs", container_id)
    assert TOKEN not in logs.stdout + logs.stderr


def test_two_clean_builds_give_the_same_image_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digests = []
    for attempt in ("a", "b"):
        monkeypatch.setenv("MCP_DEPLOY_CACHE_DIR", str(tmp_path / f"cache-{attempt}"))
        spec = image_project(tmp_path / attempt / "toolbox")
        (artifact,) = build(load_spec(spec), "cloudrun")
        digests.append(artifact.digest)
    assert digests[0] == digests[1]
