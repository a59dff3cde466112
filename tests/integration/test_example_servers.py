"""The example server and the `init` scaffold are real MCP servers: start each with uvicorn on
loopback and talk to it with the official `mcp` client (initialize, tools/list, tool calls)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.scaffold import scaffold
from tests.conftest import EXAMPLE_DIR
from tests.support.net import free_port, wait_for_port

pytestmark = pytest.mark.integration

CANARY = "canary-secret-3b7e0c1d9a"


@contextmanager
def serve(
    app_dir: Path, entry: str, env: dict[str, str], host: str = "127.0.0.1"
) -> Iterator[tuple[str, Path]]:
    """Run `uvicorn entry` from `app_dir` on a free loopback port; yields (url, log file)."""
    port = free_port(host)
    log = app_dir / f"server-{port}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                entry,
                "--host",
                host,
                "--port",
                str(port),
                "--app-dir",
                str(app_dir),
                "--log-level",
                "info",
            ],
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(
            host, port, timeout=20, gone=lambda: proc.poll() is not None, describe=log.read_text
        )
        yield f"http://{host}:{port}/mcp", log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def mcp_session(
    url: str, calls: list[tuple[str, dict[str, Any]]], token: str | None = None
) -> dict[str, Any]:
    """initialize, tools/list and each call; returns what came back."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def talk() -> dict[str, Any]:
        async with (
            httpx2.AsyncClient(timeout=30, headers=headers) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            tools = await session.list_tools()
            results = [await session.call_tool(name, args) for name, args in calls]
            return {
                "server": init.server_info.name,
                "tools": sorted(tool.name for tool in tools.tools),
                "results": [r.structured_content for r in results],
                "errors": [r.is_error for r in results],
            }

    return anyio.run(talk)


def test_example_server_speaks_mcp_and_proves_its_secret(tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "toolbox").symlink_to(EXAMPLE_DIR / "toolbox")
    env = {"GREETING": "Hi", "TOOLBOX_API_KEY": CANARY}
    with serve(app_dir, "toolbox.app:app", env) as (url, log):
        seen = mcp_session(
            url,
            [("add", {"a": 2, "b": 40}), ("greet", {"name": "smoke"}), ("secret_fingerprint", {})],
        )
    assert seen["server"] == "toolbox"
    assert seen["tools"] == ["add", "greet", "secret_fingerprint", "word_count"]
    assert seen["errors"] == [False, False, False]
    assert seen["results"][0] == {"result": 42}
    assert seen["results"][1] == {"result": "Hi, smoke!"}
    expected = hashlib.sha256(CANARY.encode()).hexdigest()[:12]
    assert seen["results"][2] == {"configured": True, "sha256_12": expected}
    assert CANARY not in str(seen) and CANARY not in log.read_text()


def test_scaffolded_server_runs(tmp_path: Path) -> None:
    result = scaffold(tmp_path / "fresh", None)
    with serve(result.directory, "fresh.app:app", {}) as (url, _log):
        seen = mcp_session(url, [("hello", {"name": "smoke test"})])
    assert seen["tools"] == ["hello"]
    assert seen["results"] == [{"result": "Hello, smoke test!"}]
