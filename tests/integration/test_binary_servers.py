"""The example servers that are Linux executables (rmcp, PMCP, go-sdk) are real MCP servers.

Each is built (cached, `tests.support.binary_servers`), run directly the way mcp-deploy's
launcher runs it (PORT, HOST=127.0.0.1, config and secret as environment variables) and spoken
to with the official Python `mcp` client: initialize, tools/list, every tool. Raw requests then
show it is stateless (no Mcp-Session-Id, each request on its own) with JSON responses, that its
SDK's DNS-rebinding protection is on (a foreign Host: 403), and that SIGTERM stops it cleanly.
The executable's linkage is checked (Go: static, no PT_INTERP; Rust: dynamic glibc) and its
size, raw and gzip -9, printed (`-rP` shows it) and recorded as test-suite properties
(`--junitxml` keeps them).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.build.elf import inspect_executable
from tests.support.binary_servers import EXAMPLES, build_env, build_example, example_copy
from tests.support.mcp_wire import INITIALIZE
from tests.support.net import free_port, wait_for_port

pytestmark = pytest.mark.integration

CANARY = "canary-secret-5d1f7a2e90"
TOOLS = ["add", "greet", "secret_fingerprint", "word_count"]
# Lambda's provided.al2023 has glibc 2.34: a dynamic binary must ask for no newer symbols.
LAMBDA_GLIBC = (2, 34)
PROTOCOL = str(INITIALIZE["params"]["protocolVersion"])


@contextmanager
def running(
    binary: Path, log: Path, env: dict[str, str]
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Start `binary` with PORT (free), HOST=127.0.0.1 and `env`, and without GREETING and
    TOOLBOX_API_KEY from this process; yields (port, process). The process is SIGKILLed on the
    way out if a test left it running."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k not in ("GREETING", "TOOLBOX_API_KEY")}
    launch_env = {**inherited, "PORT": str(port), "HOST": "127.0.0.1", **env}
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [str(binary)], env=launch_env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(
            "127.0.0.1", port, timeout=20, gone=lambda: proc.poll() is not None,
            describe=log.read_text,
        )  # fmt: skip
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def as_value(result: Any) -> Any:
    """A tool result as one value: its structured content when it is an object, else its text
    (parsed as JSON when it is JSON: SDKs send numbers as "42", PMCP strings as '"Hi"')."""
    if isinstance(result.structured_content, dict):
        return result.structured_content
    text = "".join(getattr(item, "text", "") for item in result.content)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def mcp_session(url: str) -> dict[str, Any]:
    """initialize, tools/list and a call of each tool, with the official client."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    calls: list[tuple[str, dict[str, Any]]] = [
        ("add", {"a": 2, "b": 40}),
        ("greet", {"name": "smoke"}),
        ("word_count", {"text": "one two  three\nfour"}),
        ("secret_fingerprint", {}),
    ]

    async def talk() -> dict[str, Any]:
        async with (
            httpx2.AsyncClient(timeout=30) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            tools = await session.list_tools()
            results = [await session.call_tool(name, args) for name, args in calls]
            return {
                "server": init.server_info.name,
                "tools": sorted(tool.name for tool in tools.tools),
                "errors": [result.is_error for result in results],
                "values": [as_value(result) for result in results],
            }

    return anyio.run(talk)


def post(
    url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """POST one JSON-RPC message as a streamable HTTP client does; (status, headers, body)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                (response.read()),
            )
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def fingerprint(value: str) -> str:
    """What secret_fingerprint reports for `value`: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


@pytest.mark.parametrize("name", EXAMPLES)
def test_binary_server_speaks_mcp_statelessly(
    name: str, tmp_path: Path, record_testsuite_property: Callable[[str, object], None]
) -> None:
    binary = build_example(name)

    executable = inspect_executable(binary, "server.binary")
    assert executable.arch == "x86_64"
    if name in ("toolbox-go", "toolbox-rmcp"):  # CGO_ENABLED=0; crt-static
        assert executable.static and executable.interpreter is None and not executable.needed
    else:
        assert not executable.static
        assert executable.interpreter == "/lib64/ld-linux-x86-64.so.2"
        assert executable.glibc is not None and executable.glibc <= LAMBDA_GLIBC
    data = binary.read_bytes()
    sizes = {"bytes": len(data), "gzip9_bytes": len(gzip.compress(data, compresslevel=9))}
    for key, value in {**sizes, "linkage": executable.linkage}.items():
        record_testsuite_property(f"{name}.{key}", value)
    print(f"{name}: {executable.linkage}, {sizes['bytes']} bytes, gzip -9 {sizes['gzip9_bytes']}")

    log = tmp_path / "server.log"
    env = {"GREETING": "Hi", "TOOLBOX_API_KEY": CANARY}
    with running(binary, log, env) as (port, proc):
        url = f"http://127.0.0.1:{port}/mcp"
        seen = mcp_session(url)
        assert seen["server"] == name
        assert seen["tools"] == TOOLS
        assert seen["errors"] == [False, False, False, False]
        add, greet, words, secret = seen["values"]
        assert (add, greet, words) == (42, "Hi, smoke!", 4)
        assert secret == {"configured": True, "sha256_12": fingerprint(CANARY)}

        # Stateless with JSON responses: initialize sets no session, and a later request with
        # no session id is answered on its own.
        status, headers, body = post(url, INITIALIZE)
        assert status == 200, body
        assert "mcp-session-id" not in headers
        assert headers["content-type"].startswith("application/json")
        assert json.loads(body)["result"]["serverInfo"]["name"] == name
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "greet", "arguments": {"name": "again"}},
        }
        status, headers, body = post(url, call, {"MCP-Protocol-Version": PROTOCOL})
        assert status == 200, body
        assert headers["content-type"].startswith("application/json")
        assert "Hi, again!" in json.dumps(json.loads(body)["result"]["content"])

        # The SDK's DNS-rebinding protection is left on: a foreign Host is refused.
        status, _headers, _body = post(url, INITIALIZE, {"Host": "attacker.example"})
        assert status == 403

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, log.read_text()
    assert CANARY not in json.dumps(seen) and CANARY not in log.read_text()


def test_defaults_without_config_or_secret(tmp_path: Path) -> None:
    """With GREETING and TOOLBOX_API_KEY unset: "Hello", and the secret reported missing."""
    for name in EXAMPLES:
        with running(build_example(name), tmp_path / f"{name}.log", {}) as (port, _proc):
            seen = mcp_session(f"http://127.0.0.1:{port}/mcp")
        assert seen["values"][1] == "Hello, smoke!", name
        assert seen["values"][3] == {"configured": False}, name


@pytest.mark.parametrize("name", EXAMPLES)
def test_project_copy_builds_from_the_cache(name: str, tmp_path: Path) -> None:
    """`example_copy` gives a project whose spec build command finds its outputs fresh: the
    build step mcp-deploy runs takes seconds, not minutes."""
    project = example_copy(name, tmp_path / name)
    server = tomllib.loads((project / "mcp-deploy.toml").read_text())["server"]
    assert (project / Path(server["binary"]).parts[0]).is_symlink()
    started = time.monotonic()
    subprocess.run(server["build"], cwd=project, env=build_env(), check=True, capture_output=True)
    assert time.monotonic() - started < 20
    assert os.access(project / server["binary"], os.X_OK)
