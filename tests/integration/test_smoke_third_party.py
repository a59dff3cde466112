"""A third-party MCP server (the reference `server-everything`, from npm, streamable HTTP)
passes `mcp-deploy smoke` against its own URL."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.smoke import smoke
from tests.support.net import free_port, wait_for_port

pytestmark = pytest.mark.integration

PACKAGE = "@modelcontextprotocol/server-everything@2026.8.31"
HOME = Path.home() / ".cache" / "mcp-deploy" / "test-npm" / "server-everything-2026.8.31"
ENTRY = HOME / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"


def installed() -> Path:
    if not ENTRY.is_file():
        HOME.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(HOME), PACKAGE],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "npm_config_update_notifier": "false"},
        )
        assert done.returncode == 0, done.stderr[-2000:]
    return ENTRY


@pytest.fixture(scope="module")
def everything() -> Iterator[str]:
    entry = installed()
    port = free_port()
    log = HOME / "server.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            ["node", str(entry), "streamableHttp"],
            env={**os.environ, "PORT": str(port)},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(
            "127.0.0.1",
            port,
            timeout=30,
            gone=lambda: proc.poll() is not None,
            describe=log.read_text,
        )
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_server_everything_passes_smoke(everything: str) -> None:
    result = smoke(
        everything, tool="echo", arguments={"message": "hello-smoke"}, expect="hello-smoke"
    )
    assert result.ok, (result.failure, result.hint)
    assert "echo" in result.tools and result.call_ms is not None
