"""stdio servers made remote: `mcp-server-time` from PyPI, unmodified, and a small stdio
server of our own, deployed to local on both emulated targets through mcp-deploy's bridge
(`targets/shim/mcp_deploy_stdio.py`): smoke-tested over MCP, config and secret received, a
wrong token refused, several calls reaching one warm child process, and a child that dies
replaced on the next call.

Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000).
"""

from __future__ import annotations

import hashlib
import json
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from targets.base import host_architecture
from tests.integration.test_example_servers import mcp_session
from tests.support.cli import mcp_deploy
from tests.support.debian_base import python_base_image

pytestmark = pytest.mark.integration

TIME_VERSION = "2026.10.19"
TOKEN = "stdio-token-canary-4e2f"
KEY = "stdio-key-canary-9d1c"
SECRETS = {"STDIO_TOKEN": TOKEN, "STDIO_KEY": KEY}

OURS = '''\
"""A stdio MCP server: who am I (pid), what did I get (config, secret), and die on request."""

import hashlib
import os

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("whoami")


@mcp.tool()
def whoami() -> dict[str, object]:
    """The child's pid, its GREETING and a fingerprint of its API_KEY."""
    key = os.environ.get("API_KEY", "")
    return {
        "pid": os.getpid(),
        "greeting": os.environ.get("GREETING"),
        "key": hashlib.sha256(key.encode()).hexdigest()[:12],
    }


@mcp.tool()
def die() -> str:
    """Exit the process right after answering (a crash of the child)."""
    import threading

    threading.Timer(0.05, lambda: os._exit(3)).start()
    return "bye"


if __name__ == "__main__":
    mcp.run("stdio")
'''


def spec_text(name: str, command: list[str], smoke: str) -> str:
    arch = host_architecture()
    return textwrap.dedent(
        f"""\
        [server]
        name = "{name}"
        python = "3.11"
        transport = "stdio"
        command = {json.dumps(command)}

        [config]
        GREETING = "hello from stdio"

        [secrets.MCP_AUTH_TOKEN]
        [secrets.API_KEY]

        [targets.lambda]
        arch = "{arch}"

        [targets.cloudrun]
        base = "{python_base_image()}"

        [environments.local]
        secrets.MCP_AUTH_TOKEN = "env:STDIO_TOKEN"
        secrets.API_KEY = "env:STDIO_KEY"

        {smoke}
        """
    )


@pytest.fixture
def ours(tmp_path: Path) -> Any:
    root = tmp_path / "whoami"
    root.mkdir()
    (root / "whoami.py").write_text(OURS)
    (root / "requirements.txt").write_text("mcp==2.3.0\n")
    spec = root / "mcp-deploy.toml"
    spec.write_text(
        spec_text(
            "whoami",
            ["python", "whoami.py"],
            '[smoke]\ntool = "whoami"\nexpect = "hello from stdio"',
        )
    )
    yield spec
    mcp_deploy(spec, SECRETS, "destroy", "--env", "local")


@pytest.fixture
def time_server(tmp_path: Path) -> Any:
    root = tmp_path / "time"
    root.mkdir()
    (root / "requirements.txt").write_text(f"mcp-server-time=={TIME_VERSION}\n")
    spec = root / "mcp-deploy.toml"
    spec.write_text(
        spec_text(
            "timesrv",
            ["python", "-m", "mcp_server_time", "--local-timezone", "UTC"],
            '[smoke]\ntool = "get_current_time"\narguments = { timezone = "UTC" }\nexpect = "UTC"',
        )
    )
    yield spec
    mcp_deploy(spec, SECRETS, "destroy", "--env", "local")


def deployed(spec: Path, target: str) -> dict[str, Any]:
    done = mcp_deploy(spec, SECRETS, "--target", target, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    record: dict[str, Any] = json.loads(done.stdout)["record"]
    return record


def call(url: str, tool: str, arguments: dict[str, Any] | None = None) -> Any:
    seen = mcp_session(url, [(tool, arguments or {})], TOKEN)
    assert seen["errors"] == [False], seen
    result = seen["results"][0]
    return result.get("result", result) if isinstance(result, dict) else result


@pytest.mark.parametrize("target", ["lambda", "cloudrun"])
def test_mcp_server_time_unmodified(time_server: Path, target: str) -> None:
    record = deployed(time_server, target)
    assert record["smoke"]["ok"] is True
    answer = call(record["url"], "get_current_time", {"timezone": "Europe/Paris"})
    assert answer["timezone"] == "Europe/Paris"
    request = urllib.request.Request(
        record["url"],
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode(),
        headers={
            "Authorization": "Bearer wrong",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401


@pytest.mark.parametrize("target", ["lambda", "cloudrun"])
def test_one_warm_child_config_secret_and_a_child_that_dies(ours: Path, target: str) -> None:
    url = deployed(ours, target)["url"]
    first = call(url, "whoami")
    assert first["greeting"] == "hello from stdio"
    assert first["key"] == hashlib.sha256(KEY.encode()).hexdigest()[:12]
    pids = {call(url, "whoami")["pid"] for _ in range(4)}
    assert pids == {first["pid"]}  # several calls, one child
    assert call(url, "die") == "bye"
    time.sleep(1)  # it exits 50 ms after answering
    after = call(url, "whoami")  # a new child, started for this call
    assert after["pid"] != first["pid"]
    assert after["greeting"] == "hello from stdio"
