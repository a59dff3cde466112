"""The stdio bridge (`targets/shim/mcp_deploy_stdio.py`) serves real stdio MCP servers over
stateless streamable HTTP, with one warm child process per instance.

- `mcp-server-time` from PyPI, unmodified (integration: installed with the project's uv), and a
  server on the project's own SDK, behind uvicorn on loopback, talked to by the real `mcp`
  client: initialize, tools, one child for every call and client, a killed child replaced,
  concurrent calls matched to their callers, environment passed to the child.
- A hand-written raw stdio server (tests/support/stdio_servers.py), called through the ASGI
  interface directly: the HTTP surface, initialize caching and negotiation, colliding client
  ids, batches, notifications and server-to-client requests, timeouts, cancellation, crashes
  and restarts, a child that cannot start, the lifespan, and the Lambda shim's persistent loop.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.net import free_port

SHIM = REPO / "targets" / "shim"
TIME_SERVER_VERSION = "2026.10.19"
RAW = ["python", "-m", "tests.support.stdio_servers", "raw"]
SDK = ["python", "-m", "tests.support.stdio_servers", "sdk"]
JSON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"accept", b"application/json, text/event-stream"),
    (b"host", b"bridge.test"),
]


@pytest.fixture(scope="module")
def stdio() -> Iterator[ModuleType]:
    """`mcp_deploy_stdio` imported as it is inside artifacts (next to `mcp_deploy_gate`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SHIM))
        yield importlib.import_module("mcp_deploy_stdio")


# --- calling the ASGI app directly ---


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


async def asgi(
    app: Any,
    body: Any = None,
    *,
    method: str = "POST",
    path: str = "/mcp",
    headers: list[tuple[bytes, bytes]] = JSON_HEADERS,
) -> Reply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    await app(scope, receive, send)
    fields = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    payload = sent[1]["body"]
    return Reply(sent[0]["status"], fields, json.loads(payload) if payload else None)


def request(request_id: Any, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


def tool(request_id: Any, name: str, /, **arguments: Any) -> dict[str, Any]:
    return request(request_id, "tools/call", {"name": name, "arguments": arguments})


def value(reply: Reply) -> Any:
    """The structured value a raw-server tool returned."""
    assert reply.status == 200, reply
    assert "result" in reply.body, reply.body
    return reply.body["result"]["structuredContent"]["value"]


async def seen(app: Any) -> dict[str, Any]:
    result: dict[str, Any] = value(await asgi(app, tool("seen", "seen")))
    return result


def run(scenario: Callable[[], Any]) -> Any:
    return asyncio.run(scenario())


# --- the HTTP surface ---


def test_http_surface_refusals_start_no_child(stdio: ModuleType) -> None:
    bridge = stdio.bridge_app(RAW, health_path="/healthz")

    async def scenario() -> None:
        bad = await asgi(bridge, b"{not json")
        assert bad.status == 400 and bad.body["error"]["code"] == -32700
        assert bad.body["id"] is None
        for method in ("GET", "DELETE", "PUT"):
            refused = await asgi(bridge, method=method)
            assert refused.status == 405 and refused.headers["allow"] == "POST"
        assert (await asgi(bridge, request(1, "ping"), path="/other")).status == 404
        healthy = await asgi(bridge, method="GET", path="/healthz")
        assert healthy.status == 200 and healthy.body == {"status": "ok"}
        text = [(b"content-type", b"text/plain"), (b"accept", b"application/json")]
        assert (await asgi(bridge, request(1, "ping"), headers=text)).status == 415
        html = [(b"content-type", b"application/json"), (b"accept", b"text/html")]
        assert (await asgi(bridge, request(1, "ping"), headers=html)).status == 406
        modern = [*JSON_HEADERS, (b"mcp-protocol-version", b"2026-07-28")]
        unsupported = await asgi(bridge, request(1, "ping"), headers=modern)
        assert unsupported.status == 400
        assert unsupported.body["error"]["code"] == -32022
        assert "2025-11-25" in unsupported.body["error"]["data"]["supported"]
        foreign = [*JSON_HEADERS, (b"origin", b"https://evil.example")]
        assert (await asgi(bridge, request(1, "ping"), headers=foreign)).status == 403
        invalid_bodies: list[Any] = [
            [],
            42,
            {"jsonrpc": "2.0", "id": 1},
            {"id": 1, "method": "ping"},
        ]
        for invalid in invalid_bodies:
            refused = await asgi(bridge, invalid)
            assert refused.status == 400 and refused.body["error"]["code"] == -32600, invalid
        assert (await asgi(bridge, request(None, "ping"))).status == 400
        big = json.dumps(tool(1, "echo", value="x" * 200)).encode()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(stdio, "MAX_BODY", 100)
            assert (await asgi(bridge, big)).status == 413
        assert bridge.child_pid is None  # nothing above needed the server

    run(scenario)


def test_loose_accept_headers_are_served_and_a_new_event_loop_gets_a_new_child(
    stdio: ModuleType,
) -> None:
    bridge = stdio.bridge_app(RAW)
    plain = [(b"content-type", b"application/json; charset=utf-8")]
    anything = [*plain, (b"accept", b"*/*")]

    async def scenario() -> int:
        first: int = value(await asgi(bridge, tool(1, "pid"), headers=plain))
        assert value(await asgi(bridge, tool(2, "pid"), headers=anything)) == first
        return first

    async def again() -> int:
        try:
            return await scenario()
        finally:
            await bridge.aclose()

    first_loop = asyncio.new_event_loop()
    try:
        old = first_loop.run_until_complete(scenario())
        new = run(again)  # another loop: the old child (bound to the first) is abandoned
        assert new != old
        wait_until(lambda: exited(old), "the abandoned child to be killed")
        first_loop.run_until_complete(asyncio.sleep(0.3))  # its pipes wind down there
    finally:
        first_loop.close()


# --- the raw server, directly through ASGI ---


def test_initialize_is_answered_from_the_cache(stdio: ModuleType) -> None:
    bridge = stdio.bridge_app([*RAW, "--version", "2025-06-18"])

    async def scenario() -> None:
        for asked, answered in [
            ("2025-11-25", "2025-06-18"),  # newer than the child: the child's
            ("2025-03-26", "2025-03-26"),  # an older revision: the client's
            ("2025-06-18", "2025-06-18"),
            ("1999-01-01", "2025-06-18"),  # unknown: the child's
        ]:
            init = await asgi(
                bridge, request(f"i-{asked}", "initialize", {"protocolVersion": asked})
            )
            assert init.status == 200 and init.body["id"] == f"i-{asked}"
            assert init.body["result"]["protocolVersion"] == answered
            assert init.body["result"]["serverInfo"] == {"name": "raw", "version": "0.1"}
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await asgi(bridge, initialized)).status == 202
        discover = await asgi(bridge, request(9, "server/discover"))
        assert discover.status == 200 and discover.body["error"]["code"] == -32601
        changed = {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
        assert (await asgi(bridge, changed)).status == 202
        answer = {"jsonrpc": "2.0", "id": "s-1", "result": {}}  # a client's response: dropped
        assert (await asgi(bridge, answer)).status == 202
        record = await seen(bridge)
        methods = [method for method, _ in record["seen"]]
        assert "notifications/roots/list_changed" in methods  # other notifications go through
        assert methods.count("initialize") == 1  # the bridge's own, once
        assert methods.count("notifications/initialized") == 1
        assert "server/discover" not in methods
        await bridge.aclose()

    run(scenario)


def test_concurrent_requests_with_the_same_client_id_get_their_own_replies(
    stdio: ModuleType,
) -> None:
    bridge = stdio.bridge_app(RAW)

    async def scenario() -> None:
        # Every caller uses id 1 (separate clients do); later ones answer first.
        replies = await asyncio.gather(
            *(asgi(bridge, tool(1, "echo", value=n, delay=(10 - n) / 50)) for n in range(10))
        )
        assert [r.body["id"] for r in replies] == [1] * 10
        echoed = [value(r) for r in replies]
        assert [e["value"] for e in echoed] == list(range(10))
        bridge_ids = [e["request_id"] for e in echoed]
        assert len(set(bridge_ids)) == 10 and all(isinstance(i, int) for i in bridge_ids)
        await bridge.aclose()

    run(scenario)


def test_a_batch_is_answered_element_by_element(stdio: ModuleType) -> None:
    bridge = stdio.bridge_app(RAW)

    async def scenario() -> None:
        batch = [
            tool("a", "echo", value="A", delay=0.1),
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            tool("b", "echo", value="B"),
            {"nonsense": True},
        ]
        reply = await asgi(bridge, batch)
        assert reply.status == 200
        by_id = {item["id"]: item for item in reply.body}
        assert by_id["a"]["result"]["structuredContent"]["value"]["value"] == "A"
        assert by_id["b"]["result"]["structuredContent"]["value"]["value"] == "B"
        assert by_id[None]["error"]["code"] == -32600
        quiet = [{"jsonrpc": "2.0", "method": "notifications/initialized"}]
        assert (await asgi(bridge, quiet)).status == 202
        await bridge.aclose()

    run(scenario)


def test_server_notifications_go_to_the_log_and_server_requests_are_refused(
    stdio: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge = stdio.bridge_app(RAW)

    async def scenario() -> None:
        assert value(await asgi(bridge, tool(1, "notify"))) == "notified"
        answer = value(await asgi(bridge, tool(2, "ask_client")))
        assert answer["error"]["code"] == -32601
        assert "cannot forward" in answer["error"]["message"]
        assert answer["id"].startswith("ask-")
        await bridge.aclose()

    run(scenario)
    log = capsys.readouterr().err
    assert "log [info] raw: a log line from the raw server" in log
    assert "notifications/progress" in log
    assert "sampling/createMessage" in log
    assert "] raw server" in log and "ready" in log  # the child's stderr, prefixed with its pid


def test_a_timeout_answers_with_an_error_and_keeps_the_child(stdio: ModuleType) -> None:
    bridge = stdio.bridge_app(RAW, timeout=0.5)

    async def scenario() -> None:
        pid = value(await asgi(bridge, tool(1, "pid")))
        started = time.monotonic()
        slow = await asgi(bridge, tool(2, "sleep", seconds=10))
        assert time.monotonic() - started < 5
        assert slow.status == 200 and slow.body["id"] == 2
        assert slow.body["error"]["code"] == -32001
        assert value(await asgi(bridge, tool(3, "pid"))) == pid == bridge.child_pid
        record = await seen(bridge)
        calls = [i for m, i in record["seen"] if m == "tools/call"]
        assert record["cancelled"] == [calls[1]]  # the sleep, under its bridge id
        await bridge.aclose()

    run(scenario)


def test_a_client_cancellation_reaches_the_right_request(stdio: ModuleType) -> None:
    bridge = stdio.bridge_app(RAW)

    async def scenario() -> None:
        await asgi(bridge, tool(1, "pid"))
        slow = asyncio.create_task(asgi(bridge, tool("mine", "sleep", seconds=20)))
        other = asyncio.create_task(asgi(bridge, tool("theirs", "echo", value=1, delay=1)))
        for _ in range(200):
            record = await seen(bridge)
            if len([m for m, _ in record["seen"] if m == "tools/call"]) >= 4:
                break
            await asyncio.sleep(0.02)
        cancel = {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": "mine", "reason": "changed my mind"},
        }
        assert (await asgi(bridge, cancel)).status == 202
        cancelled = await asyncio.wait_for(slow, 5)
        assert cancelled.body["id"] == "mine" and cancelled.body["error"]["code"] == -32800
        assert value(await other)["value"] == 1  # the other caller's request went on
        record = await seen(bridge)
        calls = [i for m, i in record["seen"] if m == "tools/call"]
        assert len(record["cancelled"]) == 1 and record["cancelled"][0] in calls
        unknown = {**cancel, "params": {"requestId": "nobody"}}
        assert (await asgi(bridge, unknown)).status == 202
        await bridge.aclose()

    run(scenario)


def test_a_crash_fails_the_requests_in_flight_and_the_next_request_restarts(
    stdio: ModuleType,
) -> None:
    bridge = stdio.bridge_app(RAW)

    async def scenario() -> None:
        first = value(await asgi(bridge, tool(1, "pid")))
        waiting = [asyncio.create_task(asgi(bridge, tool(n, "sleep", seconds=30))) for n in (2, 3)]
        await asyncio.sleep(0.2)
        crash = await asgi(bridge, tool(4, "crash", code=7))
        for reply in [crash, *await asyncio.gather(*waiting)]:
            assert reply.status == 200
            error = reply.body["error"]
            assert error["code"] == -32000 and "exited with code 7" in error["message"]
            assert error["data"] == {"exitCode": 7}
        assert bridge.child_pid is None
        second = value(await asgi(bridge, tool(5, "pid")))
        assert second != first and bridge.child_pid == second
        init = await asgi(bridge, request(6, "initialize", {"protocolVersion": "2025-06-18"}))
        assert init.body["result"]["serverInfo"]["name"] == "raw"
        # The new child was initialized by the bridge itself.
        assert [m for m, _ in (await seen(bridge))["seen"]][:2] == [
            "initialize",
            "notifications/initialized",
        ]
        await bridge.aclose()

    run(scenario)


def test_a_child_that_exits_at_once_gives_a_clear_error_and_a_later_request_retries(
    stdio: ModuleType, tmp_path: Path
) -> None:
    flag = tmp_path / "ready"
    bridge = stdio.bridge_app([*RAW, "--exit-unless", str(flag)])

    async def scenario() -> None:
        for reply in await asyncio.gather(
            asgi(bridge, request(1, "initialize", {"protocolVersion": "2025-06-18"})),
            asgi(bridge, tool(2, "pid")),
        ):
            assert reply.status == 200
            error = reply.body["error"]
            assert error["code"] == -32000
            assert "exited with code 3 during start-up" in error["message"], error
            assert error["data"] == {"exitCode": 3}
        flag.touch()
        assert isinstance(value(await asgi(bridge, tool(3, "pid"))), int)
        await bridge.aclose()

    run(scenario)


def test_a_command_that_cannot_start_gives_a_clear_error(stdio: ModuleType) -> None:
    bridge = stdio.bridge_app(["/nonexistent/mcp-server", "--stdio"])

    async def scenario() -> None:
        reply = await asgi(bridge, tool(1, "pid"))
        assert reply.status == 200 and reply.body["error"]["code"] == -32000
        assert (
            "could not start the MCP server process (mcp-server)" in reply.body["error"]["message"]
        )

    run(scenario)


def test_the_child_gets_the_environment_the_path_and_its_directory(
    stdio: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FROM_THE_PROCESS", "process-value")
    monkeypatch.setenv("GATE_TOKEN", "never-for-the-child")
    bridge = stdio.bridge_app(
        RAW, env={"FROM_THE_BRIDGE": "bridge-value"}, unset_env=["GATE_TOKEN"]
    )

    async def scenario() -> None:
        assert value(await asgi(bridge, tool(1, "env", name="FROM_THE_BRIDGE"))) == "bridge-value"
        assert value(await asgi(bridge, tool(2, "env", name="FROM_THE_PROCESS"))) == "process-value"
        assert value(await asgi(bridge, tool(3, "env", name="GATE_TOKEN"))) is None
        assert value(await asgi(bridge, tool(4, "cwd"))) == str(SHIM)
        path = value(await asgi(bridge, tool(5, "env", name="PYTHONPATH"))).split(os.pathsep)
        assert str(REPO) in path  # how `-m tests.support.stdio_servers` imported at all
        await bridge.aclose()

    run(scenario)
    assert bridge.command[0] == sys.executable


def test_a_child_without_home_gets_the_temp_directory(
    stdio: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOME")  # as on Lambda
    bridge = stdio.bridge_app(RAW)
    assert bridge.child_environment()["HOME"] == tempfile.gettempdir()
    monkeypatch.setenv("HOME", "/home/server")
    assert bridge.child_environment()["HOME"] == "/home/server"


def test_lifespan_shutdown_stops_the_child(stdio: ModuleType) -> None:
    bridge = stdio.bridge_app(RAW)

    async def scenario() -> int:
        events = asyncio.Queue[dict[str, Any]]()
        sent: list[str] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["type"])

        await events.put({"type": "lifespan.startup"})
        lifespan = asyncio.create_task(bridge({"type": "lifespan"}, events.get, send))
        await asyncio.sleep(0.05)
        assert sent == ["lifespan.startup.complete"] and bridge.child_pid is None
        pid: int = value(await asgi(bridge, tool(1, "pid")))
        await events.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(lifespan, 10)
        assert sent[-1] == "lifespan.shutdown.complete"
        return pid

    pid = run(scenario)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_lambda_shims_persistent_loop_keeps_one_child_across_invocations(
    stdio: ModuleType,
) -> None:
    """As `mcp_deploy_lambda.LifespanOnce` runs it: lifespan entered once on a loop that runs
    only during invocations; a child that dies between invocations (frozen loop) is replaced
    without failing the next request."""
    from mangum import Mangum
    from mangum.protocols import LifespanCycle

    bridge = stdio.bridge_app(RAW)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        lifespan = LifespanCycle(bridge, "auto")
        lifespan.__enter__()
        handler = Mangum(bridge, lifespan="off")

        def invoke(message: dict[str, Any]) -> dict[str, Any]:
            no_context: Any = None
            response = handler(function_url_event(message), no_context)
            assert response["statusCode"] == 200, response
            return dict(json.loads(response["body"]))

        pids = {invoke(tool(n, "pid"))["result"]["structuredContent"]["value"] for n in range(3)}
        assert pids == {bridge.child_pid}
        (old,) = pids
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: exited(old), "the killed child to exit")
        again = invoke(tool(9, "pid"))
        assert "result" in again, again
        assert again["result"]["structuredContent"]["value"] not in (old, None)
        lifespan.__exit__(None, None, None)
        assert bridge.child_pid is None
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def function_url_event(message: dict[str, Any]) -> dict[str, Any]:
    """A Lambda Function URL (payload 2.0) POST of `message` to /mcp."""
    host = "abc.lambda-url.eu-west-1.on.aws"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/mcp",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "host": host,
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abc",
            "domainName": host,
            "http": {
                "method": "POST",
                "path": "/mcp",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "tests",
            },
            "requestId": "r-1",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 0,
        },
        "body": json.dumps(message),
        "isBase64Encoded": False,
    }


def exited(pid: int) -> bool:
    """Whether child `pid` has exited (without reaping it)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_the_module_app_is_built_from_the_runtime_config(
    stdio: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = importlib.import_module("mcp_deploy_gate")
    config = tmp_path / "mcp_deploy_runtime.json"
    monkeypatch.setattr(gate, "RUNTIME_CONFIG", config)
    monkeypatch.setenv("MCP_AUTH_TOKEN", "gate-token")
    config.write_text(
        json.dumps(
            {
                "entry": "mcp_deploy_stdio:app",
                "transport": "stdio",
                "command": RAW,
                "path": "/rpc",
                "health_path": "/up",
                "auth": {"mode": "bearer", "token_env": "MCP_AUTH_TOKEN"},
            }
        )
    )
    lazy = stdio._LazyApp()

    async def scenario() -> None:
        assert (await asgi(lazy, method="GET", path="/up")).status == 200
        assert value(await asgi(lazy, tool(1, "env", name="MCP_AUTH_TOKEN"), path="/rpc")) is None
        await lazy.build().aclose()

    run(scenario)
    built = lazy.build()
    assert built.command[:2] == [sys.executable, "-m"] and built.path == "/rpc"
    assert built.timeout == stdio.DEFAULT_TIMEOUT
    config.write_text(json.dumps({"entry": "x:app", "auth": {"mode": "none"}}))
    with pytest.raises(RuntimeError, match="no stdio `command`"):
        stdio._LazyApp().build()


# --- real servers behind uvicorn, through the real MCP client ---


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn (lifespan on) in a thread on a free loopback port."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), "uvicorn to start")
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def talk(url: str, script: Callable[[Any], Any], clients: int = 1) -> list[Any]:
    """Run `script(session)` in `clients` concurrent MCP client sessions against `url`."""
    import anyio
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def one() -> Any:
        async with (
            httpx2.AsyncClient(timeout=60) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            return await script(session)

    async def every() -> list[Any]:
        return list(await asyncio.gather(*(one() for _ in range(clients))))

    result: list[Any] = anyio.run(every)
    return result


def test_an_sdk_stdio_server_keeps_one_process_and_gets_its_environment(
    stdio: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STDIO_BRIDGE_PROCESS_VALUE", "from-the-process")
    bridge = stdio.bridge_app(SDK, env={"STDIO_BRIDGE_PROBE": "from-the-bridge"})

    async def script(session: Any) -> dict[str, Any]:
        init = await session.initialize()
        tools = await session.list_tools()
        pids = [(await session.call_tool("pid", {})).structured_content for _ in range(3)]
        probe = await session.call_tool("env_value", {"name": "STDIO_BRIDGE_PROBE"})
        process = await session.call_tool("env_value", {"name": "STDIO_BRIDGE_PROCESS_VALUE"})
        return {
            "server": init.server_info.name,
            "version": init.protocol_version,
            "tools": sorted(t.name for t in tools.tools),
            "pids": [p["result"] for p in pids],
            "env": [probe.structured_content["result"], process.structured_content["result"]],
        }

    with served(bridge) as url:
        seen_by = talk(url, script, clients=2)
        pid = bridge.child_pid
    assert pid is not None
    for result in seen_by:
        assert result["server"] == "pid-env" and result["version"] == "2025-11-25"
        assert result["tools"] == ["env_value", "pid"]
        assert result["pids"] == [pid] * 3  # every call of both clients: one process
        assert result["env"] == ["from-the-bridge", "from-the-process"]
    assert bridge.child_pid is None  # uvicorn's lifespan shutdown stopped it


@pytest.fixture(scope="session")
def time_server_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`mcp-server-time` from PyPI installed with uv, once: kept in the pytest cache (or a
    session temporary directory when the cache is disabled), keyed by version."""
    from uv import find_uv_bin

    name = f"mcp-server-time-{TIME_SERVER_VERSION}"
    cache = getattr(request.config, "cache", None)
    target = Path(cache.mkdir(name)) if cache is not None else tmp_path_factory.mktemp(name)
    marker = target / ".installed"
    if not marker.exists():
        subprocess.run(
            [
                find_uv_bin(),
                "pip",
                "install",
                "--quiet",
                "--python",
                sys.executable,
                "--target",
                str(target),
                f"mcp-server-time=={TIME_SERVER_VERSION}",
            ],
            check=True,
            timeout=300,
        )
        marker.touch()
    return target


@pytest.mark.integration
def test_mcp_server_time_from_pypi_through_the_bridge(
    stdio: ModuleType, time_server_dir: Path
) -> None:
    bridge = stdio.bridge_app(
        ["python", "-m", "mcp_server_time"], env={"PYTHONPATH": str(time_server_dir)}
    )
    zones = ["UTC", "Europe/Paris", "Asia/Tokyo", "America/New_York", "Australia/Sydney"]

    async def first(session: Any) -> dict[str, Any]:
        init = await session.initialize()
        tools = await session.list_tools()
        now = await session.call_tool("get_current_time", {"timezone": "UTC"})
        return {
            "server": init.server_info.name,
            "tools": sorted(t.name for t in tools.tools),
            "utc": now.structured_content,
            "error": now.is_error,
        }

    async def concurrent(session: Any) -> list[str]:
        await session.initialize()
        calls = [
            session.call_tool("get_current_time", {"timezone": zones[n % len(zones)]})
            for n in range(10)
        ]
        return [r.structured_content["timezone"] for r in await asyncio.gather(*calls)]

    with served(bridge) as url:
        (seen_first,) = talk(url, first)
        assert seen_first["server"] == "mcp-time"
        assert seen_first["tools"] == ["convert_time", "get_current_time"]
        assert seen_first["error"] is False and seen_first["utc"]["timezone"] == "UTC"
        pid = bridge.child_pid
        assert pid is not None

        # Two clients at once, ten calls each in flight together: each call gets its own answer
        # (every client numbers its requests from the same start), all from the one child.
        expected = [zones[n % len(zones)] for n in range(10)]
        assert talk(url, concurrent, clients=2) == [expected, expected]
        assert bridge.child_pid == pid

        # A killed child is replaced by the next request.
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: bridge.child_pid != pid, "the bridge to notice the dead child")
        (after,) = talk(url, first)
        assert after["utc"]["timezone"] == "UTC" and after["error"] is False
        assert bridge.child_pid not in (None, pid)
