"""Node servers (`server.runtime = "node"`) deployed to local on the emulated targets:

- the TypeScript example (a fetch handler bundled by esbuild) on Lambda (nodejs22.x under
  AWS's runtime client), Cloud Run (Docker, on the default `node:22-slim` base served from a
  loopback mirror of Docker Hub) and Workers (workerd): smoke test, config, secret, 401/400;
- `@modelcontextprotocol/server-everything`, unmodified, as a program listening on $PORT behind
  mcp-deploy's launcher (Lambda through AWS's Lambda Web Adapter) on Lambda and Cloud Run;
- `@modelcontextprotocol/server-memory`, unmodified, as a stdio server bridged by the
  launcher on Lambda and Cloud Run: several calls reach one warm child, and a killed child is
  replaced.

Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000), node and npm.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.cli import mcp_deploy
from tests.support.mirror import REGISTRY, mirror_node_base, new_prefix
from tests.support.node_servers import node_copy

pytestmark = pytest.mark.integration

TOKEN = "node-token-canary-5b1e"
KEY = "node-key-canary-c07d"


@pytest.fixture(scope="module")
def hub_mirror() -> str:
    """`MCP_DEPLOY_REGISTRY_MIRRORS` serving the default Node base from loopback."""
    prefix = new_prefix()
    mirror_node_base(prefix, "22")
    return f"docker.io={REGISTRY}/{prefix}"


def environment(mirrors: str) -> dict[str, str]:
    return {
        "TOOLBOX_LOCAL_TOKEN": TOKEN,
        "TOOLBOX_LOCAL_API_KEY": KEY,
        "EVERYTHING_LOCAL_TOKEN": TOKEN,
        "MEMORY_LOCAL_TOKEN": TOKEN,
        "MCP_DEPLOY_REGISTRY_MIRRORS": mirrors,
    }


def deployed(spec: Path, env: dict[str, str], target: str) -> dict[str, Any]:
    done = mcp_deploy(spec, env, "--target", target, "--env", "local", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    record: dict[str, Any] = json.loads(done.stdout)["record"]
    assert record["smoke"]["ok"] is True, record["smoke"]
    return record


def calls(url: str, steps: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Each tool call's whole result as JSON text, in one MCP session."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def talk() -> list[str]:
        async with (
            httpx2.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            found = []
            for tool, arguments in steps:
                result = await session.call_tool(tool, arguments)
                assert not result.is_error, result
                found.append(json.dumps(result.model_dump(mode="json")))
            return found

    return anyio.run(talk)


def status_of(url: str, authorization: str | None) -> int:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=body, headers=headers), timeout=30
        ) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def no_canary_in(project: Path) -> None:
    for path in (project / ".mcp-deploy").rglob("*"):
        if path.is_file() and path.stat().st_size < 64 * 1024 * 1024:
            data = path.read_bytes()
            assert TOKEN.encode() not in data and KEY.encode() not in data, path


@pytest.mark.parametrize("target", ["lambda", "cloudrun", "workers"])
def test_the_typescript_example_deploys_to_local(
    target: str, tmp_path: Path, hub_mirror: str
) -> None:
    spec = node_copy("toolbox-ts", tmp_path / "toolbox-ts") / "mcp-deploy.toml"
    env = environment(hub_mirror)
    try:
        url = deployed(spec, env, target)["url"]
        greeting = tomllib.loads(spec.read_text())["config"]["GREETING"]
        greet, fingerprint = calls(url, [("greet", {"name": "node"}), ("secret_fingerprint", {})])
        assert f"{greeting}, node!" in greet
        assert hashlib.sha256(KEY.encode()).hexdigest()[:12] in fingerprint
        assert status_of(url, None) == 401
        assert status_of(url, "Bearer wrong") == 401
        assert status_of(url, f"Bearer {TOKEN}, Bearer {TOKEN}") == 400
        no_canary_in(spec.parent)
    finally:
        mcp_deploy(spec, env, "destroy", "--target", target, "--env", "local", "--yes")


@pytest.mark.parametrize("target", ["lambda", "cloudrun"])
def test_server_everything_unmodified_listens_behind_the_launcher(
    target: str, tmp_path: Path, hub_mirror: str
) -> None:
    spec = node_copy("server-everything", tmp_path / "everything") / "mcp-deploy.toml"
    env = environment(hub_mirror)
    try:
        url = deployed(spec, env, target)["url"]
        (echo, environ) = calls(url, [("echo", {"message": "hi"}), ("get-env", {})])
        assert "Echo: hi" in echo
        assert TOKEN not in environ  # the gate's token is the launcher's, not the server's
        assert status_of(url, "Bearer wrong") == 401
    finally:
        mcp_deploy(spec, env, "destroy", "--target", target, "--env", "local", "--yes")


def host_pid_of(inner: int, marker: str) -> int:
    """The host pid of the process whose innermost pid is `inner` and whose command line has
    `marker` (the child lives in a PID namespace of its own: a container, an environment)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        nspid = next(
            (line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), []
        )
        if marker.encode() in cmdline and nspid and nspid[-1] == str(inner):
            return int(entry.name)
    raise AssertionError(f"no process {inner} running {marker}")


@pytest.mark.parametrize("target", ["lambda", "cloudrun"])
def test_server_memory_unmodified_keeps_one_warm_child_and_survives_its_death(
    target: str, tmp_path: Path, hub_mirror: str
) -> None:
    spec = node_copy("server-memory", tmp_path / "memory") / "mcp-deploy.toml"
    env = environment(hub_mirror)
    entity = {"name": "mcp-deploy", "entityType": "tool", "observations": ["deploys servers"]}
    try:
        url = deployed(spec, env, target)["url"]
        calls(url, [("create_entities", {"entities": [entity]})])
        for _ in range(3):
            (graph,) = calls(url, [("read_graph", {})])
            assert "deploys servers" in graph
        log = mcp_deploy(
            spec, env, "logs", "--target", target, "--env", "local", "-n", "100000"
        ).stdout
        pids = re.findall(r"mcp-deploy-launch: stdio: started server (\d+)", log)
        assert len(set(pids)) == 1, log  # several calls, one child
        os.kill(host_pid_of(int(pids[0]), "server-memory"), signal.SIGKILL)
        time.sleep(0.5)
        (graph,) = calls(url, [("read_graph", {})])  # a new child, reading the same file
        assert "deploys servers" in graph
        log = mcp_deploy(
            spec, env, "logs", "--target", target, "--env", "local", "-n", "100000"
        ).stdout
        assert len(set(re.findall(r"mcp-deploy-launch: stdio: started server (\d+)", log))) == 2, (
            log
        )
    finally:
        mcp_deploy(spec, env, "destroy", "--target", target, "--env", "local", "--yes")


def test_a_worker_bundle_over_the_size_limit_fails_before_upload(tmp_path: Path) -> None:
    """An entry that pulls in 12 MB of incompressible data: the Workers build refuses it, naming
    Cloudflare's limit, and stores nothing (the program would refuse it again before upload)."""
    import base64

    (tmp_path / "src").mkdir()
    blob = base64.b64encode(os.urandom(12 * 1024 * 1024)).decode()
    (tmp_path / "src" / "big.js").write_text(f'export default "{blob}";\n')
    (tmp_path / "src" / "server.js").write_text(
        'import big from "./big.js";\n'
        "export default { fetch() { return new Response(String(big.length)); } };\n"
    )
    spec = tmp_path / "mcp-deploy.toml"
    spec.write_text(
        '[server]\nname = "big"\nruntime = "node"\nentry = "src/server.js"\n'
        "[secrets.MCP_AUTH_TOKEN]\n[targets.workers]\n"
    )
    done = mcp_deploy(spec, {}, "build", "--target", "workers", "--json")
    assert done.returncode != 0, done.stdout
    error = json.loads(done.stdout)
    assert "Workers allow" in error["error"] and "10.0 MiB" in error["error"], error
    assert not list((tmp_path / ".mcp-deploy" / "store").rglob("*.zip"))
