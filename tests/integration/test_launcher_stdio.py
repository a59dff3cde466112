"""mcp-deploy's launcher (`targets/shim/launcher`) in stdio mode, built for this machine and run
for real: with `"transport": "stdio"` it serves MCP streamable HTTP itself and bridges to ONE
warm stdio child, as the Python bridge (`targets/shim/mcp_deploy_stdio.py`) does. The children
are tests/support/stdio_servers.py (`sdk`: on the real `mcp` SDK; `raw`: hand-written, to
misbehave with). Real MCP clients and raw HTTP show: initialize/tools work, every call of every
client reaches one process, a killed or crashed child is replaced by the next call, callers
that reuse ids get their own replies, the HTTP refusals and the bearer gate, timeouts and
cancellations, the child's environment (secrets in, the gate's token and MCP_DEPLOY_* out, a
HOME of its own, the launcher's directory as cwd), and SIGTERM stopping the child as the MCP
stdio transport says. No secret value ever reaches the launcher's output."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from orchestrator.build.launcher import EXECUTABLE_NAME, launcher_binary
from targets.base import host_architecture
from targets.shim.mcp_deploy_gate import REFUSALS
from tests.conftest import REPO
from tests.integration.test_launcher import CANARY, TOKEN, Launched, children, start

pytestmark = pytest.mark.integration

RAW = [sys.executable, "-m", "tests.support.stdio_servers", "raw"]
SDK = [sys.executable, "-m", "tests.support.stdio_servers", "sdk"]
AUTH = ("Authorization", f"Bearer {TOKEN}")
JSON_HEADERS = [
    AUTH,
    ("Content-Type", "application/json"),
    ("Accept", "application/json, text/event-stream"),
]
MAX_BODY = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def launcher() -> Path:
    return launcher_binary(host_architecture(), lambda _: None)


def stdio_dir(tmp: Path, launcher: Path, command: list[str], **config: Any) -> Path:
    """A task directory with the launcher and a runtime config in stdio mode."""
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy2(launcher, tmp / EXECUTABLE_NAME)
    runtime = {
        "runtime": "binary",
        "transport": "stdio",
        "command": command,
        "path": "/mcp",
        "health_path": "/health",
        "auth": {"mode": "bearer", "token_env": "MCP_AUTH_TOKEN"},
        "secrets": ["API_KEY", "MCP_AUTH_TOKEN"],
        **config,
    }
    (tmp / "mcp_deploy_runtime.json").write_text(json.dumps(runtime))
    return tmp


def launch(
    tmp: Path,
    launcher: Path,
    command: list[str],
    env: dict[str, str | None] | None = None,
    wrapper: tuple[str, ...] = (),
    **config: Any,
) -> Launched:
    """The launcher in stdio mode, bearer gate, secrets on stdin (the Cloud Run emulation's
    way); the child finds `tests.support` through PYTHONPATH (its cwd is the launcher's
    directory). No HOME, as on Lambda."""
    directory = stdio_dir(tmp, launcher, command, **config)
    environment: dict[str, str | None] = {"PYTHONPATH": str(REPO), **(env or {})}
    secrets = {"MCP_AUTH_TOKEN": TOKEN, "API_KEY": CANARY}
    return start(directory, environment, secrets, wrapper=wrapper).ready()


@pytest.fixture
def raw(launcher: Path, tmp_path: Path) -> Iterator[Launched]:
    launched = launch(tmp_path, launcher, RAW)
    yield launched
    launched.stop()
    assert TOKEN not in launched.output() and CANARY not in launched.output()


# --- talking to it ---


def post(
    launched: Launched,
    body: Any,
    headers: list[tuple[str, str]] | None = None,
    *,
    method: str = "POST",
    path: str = "/mcp",
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body or None) of one HTTP request."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, fields, answer = launched.request(
        path, JSON_HEADERS if headers is None else headers, method=method, body=raw
    )
    return status, fields, json.loads(answer) if answer else None


def request(request_id: Any, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}


def tool(request_id: Any, name: str, /, **arguments: Any) -> dict[str, Any]:
    return request(request_id, "tools/call", {"name": name, "arguments": arguments})


def call(launched: Launched, message: Any) -> Any:
    """The JSON-RPC reply to `message` (HTTP 200)."""
    status, _, reply = post(launched, message)
    assert status == 200, (status, reply)
    return reply


def value(launched: Launched, message: Any) -> Any:
    """What a raw-server tool returned."""
    reply = call(launched, message)
    assert "result" in reply, reply
    return reply["result"]["structuredContent"]["value"]


def seen(launched: Launched) -> dict[str, Any]:
    result: dict[str, Any] = value(launched, tool("seen", "seen"))
    return result


def starts(launched: Launched) -> int:
    """How many children the launcher has started."""
    return launched.stderr().count("stdio: started server")


def gone(pid: int) -> bool:
    """Whether child `pid` has ended: no process has that pid, or one that is not (or no
    longer: a zombie has no command line) a stdio server. Pids are reused quickly here."""
    try:
        return b"stdio_servers" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def live_members(group: int) -> list[str]:
    """The commands of the live (not zombie) processes in process group `group`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            command, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = rest.split()
        if fields[2] == str(group) and fields[0] != "Z":
            found.append(command.split("(", 1)[1])
    return found


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def sessions(
    launched: Launched, script: Callable[[Any], Any], clients: int = 1, token: str = TOKEN
) -> list[Any]:
    """Run `script(session)` in `clients` concurrent MCP client sessions (the `mcp` SDK's
    streamable HTTP client) against the launcher."""
    import anyio
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    url = f"http://127.0.0.1:{launched.port}/mcp"

    async def one() -> Any:
        async with (
            httpx2.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            return await script(session)

    async def every() -> list[Any]:
        results: list[Any] = [None] * clients

        async def run(index: int) -> None:
            results[index] = await one()

        async with anyio.create_task_group() as group:
            for index in range(clients):
                group.start_soon(run, index)
        return results

    result: list[Any] = anyio.run(every)
    return result


# --- real MCP clients, the SDK server ---


def test_mcp_clients_share_one_warm_child_that_gets_the_secrets(
    launcher: Path, tmp_path: Path
) -> None:
    launched = launch(tmp_path, launcher, SDK)

    async def script(session: Any) -> dict[str, Any]:
        init = await session.initialize()
        tools = await session.list_tools()
        pids = [(await session.call_tool("pid", {})).structured_content for _ in range(3)]
        env = {}
        for name in ("API_KEY", "GREETING", "MCP_AUTH_TOKEN", "MCP_DEPLOY_SECRETS_STDIN"):
            env[name] = (await session.call_tool("env_value", {"name": name})).structured_content
        return {
            "server": init.server_info.name,
            "version": init.protocol_version,
            "tools": sorted(t.name for t in tools.tools),
            "pids": [p["result"] for p in pids],
            "env": {name: found["result"] for name, found in env.items()},
        }

    try:
        results = sessions(launched, script, clients=2)
        pid = results[0]["pids"][0]
        for result in results:
            assert result["server"] == "pid-env" and result["version"] == "2025-11-25"
            assert result["tools"] == ["env_value", "pid"]
            assert result["pids"] == [pid] * 3  # every call of both clients: one process
            assert result["env"] == {
                "API_KEY": CANARY,  # a secret given on stdin reaches the child
                "GREETING": "hello",  # so does the launcher's environment
                "MCP_AUTH_TOKEN": "",  # the gate's token is the gate's
                "MCP_DEPLOY_SECRETS_STDIN": "",
            }
        assert starts(launched) == 1
        assert f"server {pid} initialized: pid-env" in launched.stderr()

        # SIGTERM: the launcher ends, and the child with it (its stdin closed first).
        started = time.monotonic()
        launched.process.send_signal(signal.SIGTERM)
        assert launched.wait() == 0, launched.output()
        assert time.monotonic() - started < 8
        assert gone(pid)
        assert f"stopping server {pid}" in launched.stderr()
    finally:
        launched.stop()


def test_a_killed_child_is_replaced_by_the_next_call(launcher: Path, tmp_path: Path) -> None:
    launched = launch(tmp_path, launcher, SDK)

    async def pid(session: Any) -> int:
        await session.initialize()
        answer: int = (await session.call_tool("pid", {})).structured_content["result"]
        return answer

    try:
        (old,) = sessions(launched, pid)
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: gone(old), "the launcher to reap the killed child")
        (new,) = sessions(launched, pid)
        assert new != old and not gone(new)
        logged = f"server {old} was killed by SIGKILL"
        wait_until(lambda: logged in launched.stderr(), "the launcher to log the death")
        assert starts(launched) == 2
    finally:
        launched.stop()


# --- raw HTTP, the raw server ---


def test_http_refusals_start_no_child(raw: Launched) -> None:
    status, _, bad = post(raw, b"{not json")
    assert status == 400 and bad["error"]["code"] == -32700 and bad["id"] is None
    for method in ("GET", "DELETE", "PUT"):
        status, fields, refused = post(raw, b"", method=method)
        assert status == 405 and fields["allow"] == "POST", method
        assert refused["error"]["code"] == -32600
    status, _, other = post(raw, request(1, "ping"), path="/other")
    assert status == 404 and other == {"error": "not found", "mcp_path": "/mcp"}
    assert post(raw, b"", [], method="GET", path="/health")[::2] == (200, {"status": "ok"})
    text = [AUTH, ("Content-Type", "text/plain"), ("Accept", "application/json")]
    assert post(raw, request(1, "ping"), text)[0] == 415
    assert post(raw, request(1, "ping"), [AUTH, ("Accept", "application/json")])[0] == 415
    html = [AUTH, ("Content-Type", "application/json"), ("Accept", "text/html")]
    assert post(raw, request(1, "ping"), html)[0] == 406
    modern = [*JSON_HEADERS, ("MCP-Protocol-Version", "2026-07-28")]
    status, _, unsupported = post(raw, request(1, "ping"), modern)
    assert status == 400 and unsupported["error"]["code"] == -32022
    assert "2025-11-25" in unsupported["error"]["data"]["supported"]
    assert unsupported["error"]["data"]["requested"] == "2026-07-28"
    foreign = [*JSON_HEADERS, ("Origin", "https://evil.example")]
    assert post(raw, request(1, "ping"), foreign)[0] == 403
    invalid_bodies: list[Any] = [[], 42, {"jsonrpc": "2.0", "id": 1}, {"id": 1, "method": "ping"}]
    for invalid in invalid_bodies:
        status, _, refused = post(raw, invalid)
        assert status == 400 and refused["error"]["code"] == -32600, invalid
    assert post(raw, request(None, "ping"))[0] == 400
    status, _, large = post(raw, b" " * (MAX_BODY + 1))
    assert status == 413 and large["error"]["code"] == -32600
    assert starts(raw) == 0  # nothing above needed the server
    # What passes the checks is served: a loose Accept, a charset, our own Origin (the
    # public base URL: https:// + Host, or X-Forwarded-Proto's scheme, as on Cloud Run), a
    # body of exactly the limit.
    loose = [AUTH, ("Content-Type", "application/json; charset=utf-8"), ("Accept", "*/*")]
    assert post(raw, tool(1, "pid"), loose)[0] == 200
    own = [*JSON_HEADERS, ("Origin", f"https://127.0.0.1:{raw.port}")]
    assert post(raw, tool(2, "pid"), own)[0] == 200
    forwarded = [("Origin", f"http://127.0.0.1:{raw.port}"), ("X-Forwarded-Proto", "http")]
    assert post(raw, tool(2, "pid"), [*JSON_HEADERS, *forwarded])[0] == 200
    assert post(raw, tool(2, "pid"), [*JSON_HEADERS, forwarded[0]])[0] == 403
    padded = json.dumps(tool(3, "pid")).encode()
    assert post(raw, padded + b" " * (MAX_BODY - len(padded)))[0] == 200
    assert starts(raw) == 1


def test_the_gate_still_applies(raw: Launched) -> None:
    cases = {
        401: [[], [("Authorization", "Bearer wrong")], [("Authorization", f"Basic {TOKEN}")]],
        400: [[AUTH, AUTH], [("Authorization", f"Bearer {TOKEN},Bearer wrong")]],
    }
    for status, auth_headers in cases.items():
        fields, body = REFUSALS[status]
        for auth in auth_headers:
            headers = [*auth, *JSON_HEADERS[1:]]
            for method in ("POST", "GET"):  # the gate answers before the bridge does
                got, answer_headers, answer = raw.request(
                    "/mcp", headers, method=method, body=json.dumps(tool(1, "pid")).encode()
                )
                assert (got, answer) == (status, body)
                for name, expected in fields.items():
                    assert answer_headers[name] == expected
    assert raw.request("/health")[0] == 200  # always open
    assert starts(raw) == 0


def test_initialize_is_answered_from_the_cache(launcher: Path, tmp_path: Path) -> None:
    launched = launch(tmp_path, launcher, [*RAW, "--version", "2025-06-18"])
    try:
        for asked, answered in [
            ("2025-11-25", "2025-06-18"),  # newer than the child: the child's
            ("2025-03-26", "2025-03-26"),  # an older revision: the client's
            ("2025-06-18", "2025-06-18"),
            ("1999-01-01", "2025-06-18"),  # unknown: the child's
        ]:
            init = call(launched, request(f"i-{asked}", "initialize", {"protocolVersion": asked}))
            assert init["id"] == f"i-{asked}"
            assert init["result"]["protocolVersion"] == answered
            assert init["result"]["serverInfo"] == {"name": "raw", "version": "0.1"}
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert post(launched, initialized)[0] == 202
        discover = call(launched, request(9, "server/discover"))
        assert discover["id"] == 9 and discover["error"]["code"] == -32601
        changed = {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
        assert post(launched, changed)[0] == 202
        answer = {"jsonrpc": "2.0", "id": "s-1", "result": {}}  # a client's response: dropped
        assert post(launched, answer)[0] == 202
        methods = [method for method, _ in seen(launched)["seen"]]
        assert "notifications/roots/list_changed" in methods  # other notifications go through
        assert methods.count("initialize") == 1  # the bridge's own, once
        assert methods.count("notifications/initialized") == 1
        assert "server/discover" not in methods
    finally:
        launched.stop()


def test_concurrent_requests_with_the_same_client_id_get_their_own_replies(
    raw: Launched,
) -> None:
    # Every caller uses id 1 (separate clients do); later ones answer first.
    def one(n: int) -> Any:
        return call(raw, tool(1, "echo", value=n, delay=(10 - n) / 50))

    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(one, range(10)))
    assert [reply["id"] for reply in replies] == [1] * 10
    echoed = [reply["result"]["structuredContent"]["value"] for reply in replies]
    assert [e["value"] for e in echoed] == list(range(10))
    bridge_ids = [e["request_id"] for e in echoed]
    assert len(set(bridge_ids)) == 10 and all(isinstance(i, int) for i in bridge_ids)
    assert starts(raw) == 1


def test_a_batch_is_answered_element_by_element(raw: Launched) -> None:
    batch = [
        tool("a", "echo", value="A", delay=0.1),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        tool("b", "echo", value="B"),
        {"nonsense": True},
    ]
    status, _, reply = post(raw, batch)
    assert status == 200
    by_id = {item["id"]: item for item in reply}
    assert by_id["a"]["result"]["structuredContent"]["value"]["value"] == "A"
    assert by_id["b"]["result"]["structuredContent"]["value"]["value"] == "B"
    assert by_id[None]["error"]["code"] == -32600
    quiet = [{"jsonrpc": "2.0", "method": "notifications/initialized"}]
    assert post(raw, quiet)[0] == 202


def test_server_notifications_go_to_the_log_and_server_requests_are_refused(
    raw: Launched,
) -> None:
    pid = value(raw, tool(1, "pid"))
    assert value(raw, tool(2, "notify")) == "notified"
    answer = value(raw, tool(3, "ask_client"))
    assert answer["error"]["code"] == -32601
    assert "cannot forward" in answer["error"]["message"]
    assert answer["id"].startswith("ask-")
    log = raw.stderr()
    assert f"server {pid} log [info] raw: a log line from the raw server" in log
    assert "notifications/progress" in log
    assert "sampling/createMessage" in log
    ready = f"[mcp-server {pid}] raw server {pid} ready"  # its stderr, prefixed
    wait_until(lambda: ready in raw.stderr(), "the child's stderr in the launcher's")


def test_a_timeout_answers_with_an_error_and_a_cancellation_reaches_the_right_request(
    launcher: Path, tmp_path: Path
) -> None:
    launched = launch(tmp_path, launcher, RAW, request_timeout=1)
    try:
        pid = value(launched, tool(1, "pid"))
        started = time.monotonic()
        slow = call(launched, tool(2, "sleep", seconds=10))
        assert time.monotonic() - started < 5
        assert slow["id"] == 2 and slow["error"]["code"] == -32001
        assert value(launched, tool(3, "pid")) == pid  # the child keeps running
        record = seen(launched)
        calls = [i for m, i in record["seen"] if m == "tools/call"]
        assert record["cancelled"] == [calls[1]]  # the sleep, under its bridge id
    finally:
        launched.stop()

    launched = launch(tmp_path / "again", launcher, RAW)
    try:
        value(launched, tool(1, "pid"))
        with ThreadPoolExecutor(2) as pool:
            slow_call = pool.submit(call, launched, tool("mine", "sleep", seconds=8))
            other = pool.submit(call, launched, tool("theirs", "echo", value=1, delay=1))
            wait_until(
                lambda: len([m for m, _ in seen(launched)["seen"] if m == "tools/call"]) >= 4,
                "both calls to reach the child",
            )
            cancel = {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": "mine", "reason": "changed my mind"},
            }
            assert post(launched, cancel)[0] == 202
            cancelled = slow_call.result(5)
            assert cancelled["id"] == "mine" and cancelled["error"]["code"] == -32800
            assert other.result(5)["result"]["structuredContent"]["value"]["value"] == 1
        record = seen(launched)
        calls = [i for m, i in record["seen"] if m == "tools/call"]
        assert len(record["cancelled"]) == 1 and record["cancelled"][0] in calls
        unknown = {**cancel, "params": {"requestId": "nobody"}}
        assert post(launched, unknown)[0] == 202
    finally:
        launched.stop()


def test_an_abandoned_http_request_is_cancelled_in_the_child(raw: Launched) -> None:
    value(raw, tool(1, "pid"))
    body = json.dumps(tool("gone", "sleep", seconds=20)).encode()
    head = "".join(f"{name}: {field}\r\n" for name, field in JSON_HEADERS)
    with socket.create_connection(("127.0.0.1", raw.port)) as client:
        client.sendall(
            f"POST /mcp HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        wait_until(
            lambda: len([m for m, _ in seen(raw)["seen"] if m == "tools/call"]) >= 3,
            "the sleep to reach the child",
        )
    wait_until(lambda: bool(seen(raw)["cancelled"]), "the child to be told")
    record = seen(raw)
    calls = [i for m, i in record["seen"] if m == "tools/call"]
    (cancelled,) = record["cancelled"]
    assert cancelled in calls[1:]  # the sleep (not the pid call), under its bridge id


def test_a_crash_fails_the_requests_in_flight_and_the_next_request_restarts(
    raw: Launched,
) -> None:
    first = value(raw, tool(1, "pid"))
    with ThreadPoolExecutor(2) as pool:
        waiting = [pool.submit(call, raw, tool(n, "sleep", seconds=30)) for n in (2, 3)]
        time.sleep(0.3)
        crash = call(raw, tool(4, "crash", code=7))
        for reply in [crash, *(w.result(10) for w in waiting)]:
            error = reply["error"]
            assert error["code"] == -32000 and "exited with code 7" in error["message"]
            assert error["data"] == {"exitCode": 7}
    wait_until(lambda: gone(first), "the launcher to reap the crashed child")
    second = value(raw, tool(5, "pid"))
    assert second != first
    init = call(raw, request(6, "initialize", {"protocolVersion": "2025-06-18"}))
    assert init["result"]["serverInfo"]["name"] == "raw"
    # The new child was initialized by the bridge itself.
    assert [m for m, _ in seen(raw)["seen"]][:2] == ["initialize", "notifications/initialized"]
    crashing = "raw server: crashing on request"
    wait_until(lambda: crashing in raw.stderr(), "the child's last words in the log")


def test_a_child_that_cannot_start_gives_a_clear_error_and_a_later_request_retries(
    launcher: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "ready"
    launched = launch(tmp_path / "exits", launcher, [*RAW, "--exit-unless", str(flag)])
    try:
        with ThreadPoolExecutor(2) as pool:
            init = request(1, "initialize", {"protocolVersion": "2025-06-18"})
            replies = list(pool.map(lambda m: call(launched, m), [init, tool(2, "pid")]))
        for reply in replies:
            error = reply["error"]
            assert error["code"] == -32000
            assert "exited with code 3 during start-up" in error["message"], error
            assert error["data"] == {"exitCode": 3}
        flag.touch()
        assert isinstance(value(launched, tool(3, "pid")), int)
    finally:
        launched.stop()

    launched = launch(tmp_path / "missing", launcher, ["/nonexistent/mcp-server", "--stdio"])
    try:
        error = call(launched, tool(1, "pid"))["error"]
        assert error["code"] == -32000
        assert "could not start the MCP server process (mcp-server)" in error["message"]
        assert "mcp-server cannot be started" in launched.stderr()  # said at start-up too
    finally:
        launched.stop()


def test_the_childs_environment_directory_and_home(launcher: Path, tmp_path: Path) -> None:
    """A command with a slash is relative to the launcher's directory, which is its cwd; the
    environment is the launcher's with the secrets, without MCP_DEPLOY_* and the gate's
    token; a HOME of its own (in the temp directory) when there is none, or it cannot be
    written; removed when the launcher ends."""
    directory = tmp_path / "task"
    (directory / "bin").mkdir(parents=True)
    script = directory / "bin" / "server"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -m tests.support.stdio_servers raw\n")
    script.chmod(0o755)
    for home in (None, "/nonexistent/home"):
        launched = launch(directory, launcher, ["bin/server"], env={"HOME": home})
        try:
            environment = {
                name: value(launched, tool(n, "env", name=name))
                for n, name in enumerate(
                    ["API_KEY", "GREETING", "MCP_AUTH_TOKEN", "MCP_DEPLOY_HOST", "HOME"]
                )
            }
            assert value(launched, tool(9, "cwd")) == str(directory)
            fresh = Path(environment.pop("HOME"))
            assert environment == {
                "API_KEY": CANARY,
                "GREETING": "hello",
                "MCP_AUTH_TOKEN": None,
                "MCP_DEPLOY_HOST": None,
            }
            assert fresh.parent == Path("/tmp") and fresh.is_dir()  # no TMPDIR: Go's default
            assert fresh.name.startswith("mcp-deploy-home-")
            launched.process.send_signal(signal.SIGTERM)
            assert launched.wait() == 0, launched.output()
            assert not fresh.exists()
        finally:
            launched.stop()

    writable = tmp_path / "home"
    writable.mkdir()
    launched = launch(directory, launcher, ["bin/server"], env={"HOME": str(writable)})
    try:
        assert value(launched, tool(1, "env", name="HOME")) == str(writable)
    finally:
        launched.stop()


def test_sigterm_closes_stdin_then_terms_then_kills(launcher: Path, tmp_path: Path) -> None:
    """A child that outlives its stdin and ignores SIGTERM: killed, with its process group,
    within the launcher's grace."""
    stubborn = f"trap '' TERM; {sys.executable} -m tests.support.stdio_servers raw; sleep 30"
    launched = launch(tmp_path, launcher, ["/bin/sh", "-c", stubborn])
    try:
        value(launched, tool(1, "pid"))
        (shell,) = children(launched.process.pid)
        started = time.monotonic()
        launched.process.send_signal(signal.SIGTERM)
        assert launched.wait() == 1
        assert 3.5 < time.monotonic() - started < 8
        assert "did not end after its stdin closed and SIGTERM; killed it" in launched.stderr()
        assert gone(shell)
        # `sleep`, in its process group, died with it (it may linger as a zombie of init).
        wait_until(lambda: "sleep" not in live_members(shell), "the group's sleep to end", 2)
    finally:
        launched.stop()


def test_as_pid_1_the_launcher_reaps_orphans_and_children(launcher: Path, tmp_path: Path) -> None:
    """In a container the launcher is PID 1: one reaper collects its stdio children (each
    restart a new one) and the orphans re-parented to it."""
    wrapper = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL")
    if subprocess.run([*wrapper, "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("needs unshare and the right to create a PID namespace")
    orphaning = f"(sleep 0.2) & exec {sys.executable} -m tests.support.stdio_servers raw"
    launched = launch(tmp_path, launcher, ["/bin/sh", "-c", orphaning], wrapper=wrapper)
    try:
        (launcher_pid,) = children(launched.process.pid)
        first = value(launched, tool(1, "pid"))
        call(launched, tool(2, "crash"))  # the next request starts another child
        assert value(launched, tool(3, "pid")) != first
        time.sleep(1)  # both orphans have ended by now
        assert list(children(launcher_pid).values()) == ["S"]  # the child, no zombie
        os.kill(launcher_pid, signal.SIGTERM)
        assert launched.wait() == 0
    finally:
        launched.stop()
