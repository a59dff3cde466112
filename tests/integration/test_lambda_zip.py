"""The Lambda zip is real: unpacked read-only and run by AWS's runtime client (`awslambdaric`,
same Python minor as the spec) against a Runtime API on loopback, it answers MCP over Function
URL events; it enforces bearer auth; builds are reproducible; no secret reaches the zip."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.build.pipeline import build
from orchestrator.spec.loader import load_spec
from targets.aws_lambda.events import function_url_event, response_body
from targets.aws_lambda.local_runtime import runtime_python
from targets.aws_lambda.runtime_api import RuntimeAPI
from tests.conftest import EXAMPLE_DIR

pytestmark = pytest.mark.integration

TOKEN = "token-canary-71d0a2"
API_KEY = "apikey-canary-9e44c1"
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def copy_example(destination: Path) -> Path:
    shutil.copytree(EXAMPLE_DIR, destination, ignore=shutil.ignore_patterns(".mcp-deploy"))
    return destination / "mcp-deploy.toml"


@pytest.fixture(scope="module")
def lambda_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("project")
    spec = copy_example(project / "toolbox")
    (spec.parent / ".env").write_text(f"TOOLBOX_API_KEY={API_KEY}\n")
    (artifact,) = build(load_spec(spec), "lambda")
    return artifact.path


def rpc(method: str, params: dict[str, Any] | None = None, ident: int = 1) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


INITIALIZE = rpc(
    "initialize",
    {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
)


@pytest.fixture(scope="module")
def running(lambda_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeAPI]:
    """The zip unpacked into a task root mounted read-only, under awslambdaric."""
    task_root = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(lambda_zip) as archive:
        archive.extractall(task_root)
    python = runtime_python(load_spec(EXAMPLE_DIR / "mcp-deploy.toml").spec.server.python)
    env = {
        "PATH": os.environ["PATH"],
        "AWS_LAMBDA_FUNCTION_NAME": "toolbox-local",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "MCP_AUTH_TOKEN": TOKEN,
        "TOOLBOX_API_KEY": API_KEY,
        "GREETING": "Hi",
    }
    runtime = f"{python} -m awslambdaric mcp_deploy_lambda.handler"
    read_only = f"mount --bind {task_root} {task_root} && mount -o remount,bind,ro {task_root}"
    with RuntimeAPI("toolbox-local") as api:
        env["AWS_LAMBDA_RUNTIME_API"] = api.address
        log = task_root.parent / "runtime.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    f"{read_only} && exec {runtime}",
                ],
                cwd=task_root,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            yield api
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        assert TOKEN not in log.read_text() and API_KEY not in log.read_text()


def call(api: RuntimeAPI, body: bytes, token: str | None = TOKEN) -> dict[str, Any]:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if not body.startswith(INITIALIZE[:20]):
        headers["mcp-protocol-version"] = "2025-06-18"
    outcome = api.invoke(function_url_event("POST", "/mcp", headers=headers, body=body), 60)
    assert outcome.kind == "response", (outcome.kind, outcome.body[:2000])
    response: dict[str, Any] = outcome.json()
    return response


def test_initialize_through_a_function_url_event(running: RuntimeAPI) -> None:
    response = call(running, INITIALIZE)
    assert response["statusCode"] == 200
    result = json.loads(response_body(response))["result"]
    assert result["serverInfo"]["name"] == "toolbox"
    assert result["protocolVersion"] == "2025-06-18"


def test_warm_tool_calls_see_config_and_secret(running: RuntimeAPI) -> None:
    greet = call(running, rpc("tools/call", {"name": "greet", "arguments": {"name": "x"}}, 2))
    assert json.loads(response_body(greet))["result"]["structuredContent"] == {"result": "Hi, x!"}
    proof = call(running, rpc("tools/call", {"name": "secret_fingerprint", "arguments": {}}, 3))
    expected = hashlib.sha256(API_KEY.encode()).hexdigest()[:12]
    content = json.loads(response_body(proof))["result"]["structuredContent"]
    assert content == {"configured": True, "sha256_12": expected}


@pytest.mark.parametrize("token", [None, "wrong-token", TOKEN + "x", ""])
def test_bearer_token_is_enforced(running: RuntimeAPI, token: str | None) -> None:
    response = call(running, INITIALIZE, token=token)
    assert response["statusCode"] == 401
    assert response["headers"]["www-authenticate"].startswith("Bearer")


def test_zip_is_deterministic_and_clean(lambda_zip: Path) -> None:
    with zipfile.ZipFile(lambda_zip) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names)
        assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {info.external_attr >> 16 for info in infos} <= {0o100644, 0o100755}
        assert "mcp_deploy_lambda.py" in names and "toolbox/app.py" in names
        assert "toolbox/__pycache__/app.cpython-311.pyc" in names
        assert not any(n.endswith((".env", "mcp-deploy.toml")) for n in names)
        assert not any(n.startswith("bin/") or ".pyi" in n for n in names)
        runtime = json.loads(archive.read("mcp_deploy_runtime.json"))
        assert runtime["auth"] == {"mode": "bearer", "token_env": "MCP_AUTH_TOKEN"}
    data = lambda_zip.read_bytes()
    assert API_KEY.encode() not in data and b"STAGING" not in data


def test_two_clean_builds_give_the_same_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digests = []
    for attempt in ("a", "b"):
        monkeypatch.setenv("MCP_DEPLOY_CACHE_DIR", str(tmp_path / f"cache-{attempt}"))
        spec = copy_example(tmp_path / attempt / "toolbox")
        (artifact,) = build(load_spec(spec), "lambda")
        digests.append(artifact.digest)
    assert digests[0] == digests[1]


def test_get_on_the_mcp_path_is_refused_at_once(running: RuntimeAPI) -> None:
    headers = {"authorization": f"Bearer {TOKEN}", "accept": "text/event-stream"}
    outcome = running.invoke(function_url_event("GET", "/mcp", headers=headers), 30)
    assert outcome.kind == "response"
    assert outcome.json()["statusCode"] == 405
