"""Serve a stdio MCP server over MCP streamable HTTP (stateless, JSON responses).

Most published MCP servers are stdio programs: they read newline-delimited JSON-RPC on stdin
and write it on stdout (the MCP stdio transport). This module is an ASGI app that puts such a
program behind the HTTP surface every target serves, using only the standard library:

- ONE child process per execution environment / instance (Lambda execution environment, Cloud
  Run instance, local container), started on first use (not at import), kept warm across
  requests and invocations, and shared by every caller of that instance.
- The bridge initializes the child once (`initialize` with the newest handshake protocol
  version it knows, then `notifications/initialized`) and caches the InitializeResult. A
  client's `initialize` is answered from that cache and never forwarded: the protocol version
  is the client's when the child supports it (the child's own version, or an older known
  handshake version: SDKs keep accepting older revisions), else the child's. A client's
  `notifications/initialized` is answered 202 and not forwarded. `server/discover` (the
  2026-07-28 stateless probe) is answered "method not found", so modern clients fall back to
  the initialize handshake this bridge speaks.
- Every other request is forwarded under a bridge-assigned integer id (unique for the life of
  the bridge, so concurrent callers that reuse the same ids never collide); the reply is sent
  back under the caller's own id. Requests in flight at once are matched by id by one reader
  task on the child's stdout. Client notifications are forwarded (202); for
  `notifications/cancelled` the `requestId` is mapped to the bridge id when exactly one request
  in flight carries that client id (stateless HTTP has no session to tell callers apart; an
  ambiguous cancellation is dropped) and the cancelled request is answered at once with an
  error. Client notifications reach only a running child (a new child has nothing a
  notification could refer to); client JSON-RPC responses are accepted (202) and dropped.
- A batch (JSON array, MCP 2025-03-26) is handled element by element, concurrently; the answer
  is the array of the replies to its requests (202 when it held none).

Isolation. The child is shared by all callers of an instance: whatever state the server keeps
(caches, open files, a browser session, a logged-in account, a working directory) is seen by
every caller routed to that instance, and callers on other instances see a different child.
That suits stateless tools (time, fetch, search, conversions). It is wrong for servers that keep
per-user state or assume one client (the stdio transport's model: one client per process), e.g.
one that logs in as the caller or keeps a conversation: serve those as an HTTP MCP server with
per-request or per-user state instead. The child receives this process's environment (config and
secrets included, except names listed in `unset_env`) and the platform's credentials.

Not supported: server-to-client requests (sampling/createMessage, roots/list,
elicitation/create) cannot reach a caller over stateless JSON HTTP; the bridge answers them
itself with a JSON-RPC error (-32601) so the server can carry on (it answers `ping`). Server
notifications (logging, progress, list_changed) go to this process's stderr, the platform log;
so does the child's stderr, line by line, prefixed with its pid.

Failures. Request-level failures are HTTP 200 with a JSON-RPC error under the caller's id, so
MCP clients surface them per request (a 5xx would be taken for a transport failure):
- the child cannot start, exits or closes stdout before answering: -32000 (the SDKs'
  CONNECTION_CLOSED code); every request then in flight gets it; the next request starts (and
  initializes) a new child. A request that could not even be written to a dead child is retried
  once on a new child (it never reached the old one). No backoff: a server that crashes at
  start costs one start attempt per request (concurrent requests share one attempt);
- no answer within `timeout` seconds (60 by default): -32001 (REQUEST_TIMEOUT); the child is
  sent `notifications/cancelled` for the request and keeps running; a late reply is dropped.
HTTP-level refusals: 400 parse error (-32700) / invalid request (-32600) / an MCP-Protocol-Version
header this bridge does not speak (-32022, data.supported); 403 an Origin header that does not
match the Host; 404 another path; 405 (`Allow: POST`) GET, DELETE or any other method on the MCP
path (no SSE stream, no sessions); 406 an Accept header without application/json; 413 a body
over 16 MiB; 415 a Content-Type other than application/json.

Lifespan: startup does nothing (the child starts with the first request); shutdown stops the
child as the MCP stdio transport says: close its stdin, then SIGTERM (to its process group),
then SIGKILL after a short grace.

The bridge binds to the event loop it first runs on (uvicorn's loop; the Lambda shim's
persistent loop). Called from another loop (only tests do that) it abandons the child (SIGKILL)
and starts a new one on the new loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shlex
import signal
import sys
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BridgeError", "StdioBridge", "app", "bridge_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
"""Protocol revisions reached through the initialize handshake, oldest to newest."""
BRIDGE_PROTOCOL_VERSION = HANDSHAKE_VERSIONS[-1]
"""What the bridge asks the child for."""

DEFAULT_TIMEOUT = 60.0
MAX_BODY = 16 * 1024 * 1024
LINE_LIMIT = 64 * 1024 * 1024
"""Longest line read from the child (one JSON-RPC message)."""
STOP_GRACE = 2.0
"""Seconds the child gets after its stdin closes, and again after SIGTERM."""
LOG_CLIP = 4000

# JSON-RPC error codes
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603
SERVER_UNAVAILABLE = -32000  # the MCP SDKs' CONNECTION_CLOSED
REQUEST_TIMEOUT = -32001  # the MCP SDKs' REQUEST_TIMEOUT
UNSUPPORTED_PROTOCOL_VERSION = -32022
REQUEST_CANCELLED = -32800

CLIENT_INFO = {"name": "mcp-deploy-stdio-bridge", "version": "1"}
LOG_PREFIX = "[mcp-deploy stdio]"


class BridgeError(Exception):
    """A request could not be answered by the child: becomes a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class _NotDelivered(Exception):
    """The message could not be written to the child (it is gone)."""


def _log(text: str) -> None:
    try:
        sys.stderr.write(f"{LOG_PREFIX} {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: nowhere to log
        pass


def _clip(text: str) -> str:
    return text if len(text) <= LOG_CLIP else f"{text[:LOG_CLIP]}… ({len(text)} characters)"


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def _encode(message: Mapping[str, Any]) -> bytes:
    """One stdio frame: compact JSON (newlines inside strings are escaped) and a newline."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _bridge_id(value: Any) -> int | None:
    """`value` as one of the bridge's (integer) ids; a sloppy server's 1.0 is 1."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _same_id(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _exit_words(returncode: int | None) -> str:
    if returncode is None:
        return "closed its output"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _has_exited(pid: int) -> bool:
    """Whether child `pid` has exited, without reaping it (asyncio's watcher does that)."""
    waitid = getattr(os, "waitid", None)
    if waitid is None:
        return False
    try:
        return waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped
        return True
    except OSError:
        return False


@dataclass
class _Pending:
    future: asyncio.Future[dict[str, Any]]
    client_id: Any


class _Child:
    """One running stdio server: its pipes, the requests in flight and the tasks reading it."""

    def __init__(
        self, proc: asyncio.subprocess.Process, loop: asyncio.AbstractEventLoop, ids: Iterator[int]
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.loop = loop
        self.ids = ids
        self.pending: dict[int, _Pending] = {}
        self.dead = False
        self.returncode: int | None = None
        self.initialize_result: dict[str, Any] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader = self._spawn(self._read_stdout())
        self._spawn(self._copy_stderr())
        self._watcher = self._spawn(self._watch())

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def stop_soon(self) -> None:
        """Stop the child in the background."""
        self.dead = True
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._spawn(self.stop())

    # --- state ---

    def alive(self) -> bool:
        if not self.dead and (self.proc.returncode is not None or _has_exited(self.pid)):
            self.dead = True
        return not self.dead

    def exit_words(self) -> str:
        return _exit_words(self.returncode)

    async def wait_gone(self, timeout: float) -> None:
        """Wait (at most `timeout` s) until the exit is recorded and in-flight requests failed."""
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._watcher), timeout)

    # --- writing ---

    async def send(self, message: Mapping[str, Any]) -> None:
        stdin = self.proc.stdin
        if self.dead or stdin is None:
            raise _NotDelivered
        try:
            stdin.write(_encode(message))
            await stdin.drain()
        except (ConnectionError, OSError, RuntimeError) as error:
            self.dead = True
            raise _NotDelivered from error
        if stdin.transport.is_closing():  # the write met a closed pipe (EPIPE): nobody read it
            self.dead = True
            raise _NotDelivered

    def send_nowait(self, message: Mapping[str, Any]) -> None:
        """Write without waiting for the pipe to drain (best effort)."""
        stdin = self.proc.stdin
        if self.dead or stdin is None:
            return
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            stdin.write(_encode(message))

    async def request(
        self, message: Mapping[str, Any], client_id: Any, timeout: float
    ) -> dict[str, Any]:
        """Send `message` under a new bridge id; the child's reply (with the bridge id)."""
        bridge_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self.pending[bridge_id] = _Pending(future, client_id)
        try:
            await self.send({**message, "id": bridge_id})
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self.send_nowait(_cancelled(bridge_id, "timed out in the stdio bridge"))
            _log(f"request {bridge_id} ({message.get('method')}) timed out after {timeout:g} s")
            raise BridgeError(
                REQUEST_TIMEOUT,
                f"the MCP server did not answer within {timeout:g} s; the request was "
                "cancelled (the server keeps running)",
            ) from None
        except asyncio.CancelledError:
            if not future.done():
                self.send_nowait(_cancelled(bridge_id, "the HTTP request was abandoned"))
            raise
        finally:
            self.pending.pop(bridge_id, None)

    def cancel(self, client_id: Any, params: Mapping[str, Any]) -> None:
        """Forward a client's cancellation of its request `client_id`, if unambiguous."""
        matches = [bid for bid, p in self.pending.items() if _same_id(p.client_id, client_id)]
        if len(matches) != 1:
            _log(
                f"cancellation of request {client_id!r} dropped: "
                f"{'no' if not matches else len(matches)} requests in flight carry that id"
            )
            return
        bridge_id = matches[0]
        forwarded = {**params, "requestId": bridge_id}
        self.send_nowait(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": forwarded}
        )
        pending = self.pending.pop(bridge_id)
        if not pending.future.done():
            pending.future.set_exception(
                BridgeError(REQUEST_CANCELLED, "the request was cancelled by the client")
            )

    # --- reading ---

    async def _read_stdout(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        while True:
            try:
                line = await stdout.readline()
            except ValueError:  # one line longer than LINE_LIMIT: framing is lost
                _log(f"server {self.pid} wrote a line over {LINE_LIMIT} bytes; stopping it")
                break
            if not line:
                break
            self._on_line(line)
        # Its stdout is closed: the child is no use any more, even if it still runs.
        self.dead = True
        if self.proc.returncode is None:
            self.stop_soon()

    def _on_line(self, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace").strip()
        if not text:
            return
        try:
            parsed = json.loads(text)
        except ValueError:
            _log(f"server {self.pid} wrote a non-JSON line on stdout: {_clip(text)}")
            return
        for message in parsed if isinstance(parsed, list) else [parsed]:
            if isinstance(message, dict):
                self._on_message(message)
            else:
                _log(f"server {self.pid} wrote a non-JSON-RPC value: {_clip(text)}")

    def _on_message(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        message_id = message.get("id")
        if isinstance(method, str):
            if message_id is None:
                self._log_notification(method, message.get("params"))
            else:
                self._answer_server_request(method, message_id)
            return
        if "result" in message or "error" in message:
            key = _bridge_id(message_id)
            pending = self.pending.pop(key, None) if key is not None else None
            if pending is not None and not pending.future.done():
                pending.future.set_result(message)
            elif message_id is None:
                _log(f"server {self.pid} reported an error: {_clip(json.dumps(message))}")
            else:
                _log(f"server {self.pid} answered request {message_id!r}, which no longer waits")
            return
        _log(f"server {self.pid} wrote an unexpected message: {_clip(json.dumps(message))}")

    def _log_notification(self, method: str, params: Any) -> None:
        if method == "notifications/message" and isinstance(params, dict):
            logger = f" {params['logger']}" if params.get("logger") else ""
            data = params.get("data")
            text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
            _log(f"server {self.pid} log [{params.get('level', '?')}]{logger}: {_clip(text)}")
        else:
            rendered = json.dumps(params, ensure_ascii=False) if params is not None else ""
            _log(f"server {self.pid} notification {method} {_clip(rendered)}".rstrip())

    def _answer_server_request(self, method: str, request_id: Any) -> None:
        if method == "ping":
            self.send_nowait({"jsonrpc": "2.0", "id": request_id, "result": {}})
            return
        _log(f"server {self.pid} sent a {method} request; answered with an error (unsupported)")
        self.send_nowait(
            _error(
                request_id,
                METHOD_NOT_FOUND,
                f"the mcp-deploy stdio bridge serves stateless HTTP and cannot forward the "
                f"server-to-client request {method!r} to a client",
            )
        )

    async def _copy_stderr(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None
        while True:
            try:
                line = await stderr.readline()
            except ValueError:  # an over-long line: its start was dropped, carry on
                continue
            if not line:
                return
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            try:
                sys.stderr.write(f"[mcp-server {self.pid}] {text}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    async def _watch(self) -> None:
        returncode = await self.proc.wait()
        self.dead = True
        # Replies written just before the exit are still in the pipe: let the reader take them.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader), 1.0)
        self._signal_group(signal.SIGKILL)  # leftovers: grandchildren holding the pipes
        self.returncode = returncode
        in_flight = [p for p in self.pending.values() if not p.future.done()]
        _log(
            f"server {self.pid} {_exit_words(returncode)}"
            + (f"; {len(in_flight)} requests in flight get an error" if in_flight else "")
        )
        for pending in in_flight:
            pending.future.set_exception(
                BridgeError(
                    SERVER_UNAVAILABLE,
                    f"the MCP server process {_exit_words(returncode)} before answering; the "
                    "next request starts a new one",
                    {"exitCode": returncode},
                )
            )
        self.pending.clear()

    # --- stopping ---

    def _signal_group(self, signum: int) -> None:
        """Signal the child's process group (it leads one: npx-style wrappers' children too)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Close stdin, then SIGTERM, then SIGKILL (the MCP stdio transport's shutdown)."""
        self.dead = True
        if self.proc.stdin is not None:
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                self.proc.stdin.close()
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace)
                break
            except TimeoutError:
                self._signal_group(signum)
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(signum)
        await self.wait_gone(grace)

    def abandon(self) -> None:
        """Kill the child without its event loop (which is not running any more)."""
        self.dead = True
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGKILL)


def _cancelled(bridge_id: int, reason: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": bridge_id, "reason": reason},
    }


def _negotiate(requested: Any, child_version: str) -> str:
    """The version to answer a client's initialize with."""
    if requested == child_version:
        return child_version
    if requested in HANDSHAKE_VERSIONS and child_version in HANDSHAKE_VERSIONS:
        older = HANDSHAKE_VERSIONS.index(requested) < HANDSHAKE_VERSIONS.index(child_version)
        if older:
            return str(requested)
    return child_version


def _media_types(value: str) -> list[str]:
    return [part.split(";")[0].strip().lower() for part in value.split(",")]


class StdioBridge:
    """ASGI app: MCP streamable HTTP (stateless, JSON) in front of one stdio child process."""

    def __init__(
        self,
        command: Iterable[str],
        *,
        env: Mapping[str, str] | None = None,
        path: str = "/mcp",
        health_path: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        start_timeout: float | None = None,
        cwd: str | os.PathLike[str] | None = None,
        unset_env: Iterable[str] = (),
    ) -> None:
        argv = [str(part) for part in command]
        if not argv:
            raise ValueError("the stdio server command is empty")
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        self.command = argv
        self.env = dict(env or {})
        self.path = "/" + path.strip("/") if path.strip("/") else "/"
        self.health_path = health_path
        self.timeout = float(timeout)
        self.start_timeout = float(start_timeout if start_timeout is not None else timeout)
        self.cwd = str(cwd) if cwd is not None else str(Path(__file__).resolve().parent)
        self.unset_env = frozenset(unset_env)
        self._ids = itertools.count(1)
        self._child: _Child | None = None
        self._starting: asyncio.Task[_Child] | None = None

    # --- for tests and logs ---

    @property
    def child_pid(self) -> int | None:
        """The pid of the running child, None when there is none (not started, or gone)."""
        child = self._child
        return child.pid if child is not None and not child.dead else None

    # --- the child ---

    def child_environment(self) -> dict[str, str]:
        """This process's environment (read now: config and secrets are set by the time the
        child starts), minus `unset_env`, plus `env`; PYTHONPATH = `env`'s PYTHONPATH, then
        this process's sys.path (so vendored packages import in the child)."""
        environment = {k: v for k, v in os.environ.items() if k not in self.unset_env}
        extra = dict(self.env)
        first = [p for p in extra.pop("PYTHONPATH", "").split(os.pathsep) if p]
        paths = [os.path.abspath(p) for p in [*first, *sys.path] if p]
        environment.update(extra)
        environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        environment.setdefault("PYTHONUNBUFFERED", "1")
        return environment

    def _live_child(self) -> _Child | None:
        child = self._child
        if child is None or child.loop is not asyncio.get_running_loop() or not child.alive():
            return None
        return child

    async def _ensure_child(self) -> _Child:
        loop = asyncio.get_running_loop()
        child = self._child
        if child is not None and child.loop is not loop:
            _log(f"called from another event loop: abandoning server {child.pid}")
            child.abandon()
            self._child = child = None
        if child is not None and child.alive():
            return child
        starting = self._starting
        if starting is None or starting.done() or starting.get_loop() is not loop:
            starting = self._starting = loop.create_task(self._start())
            starting.add_done_callback(_retrieve)
        return await asyncio.shield(starting)

    async def _start(self) -> _Child:
        loop = asyncio.get_running_loop()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.child_environment(),
                cwd=self.cwd,
                limit=LINE_LIMIT,
                start_new_session=True,
            )
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            _log(f"could not start {shlex.join(self.command)}: {reason}")
            raise BridgeError(
                SERVER_UNAVAILABLE,
                f"could not start the MCP server process ({Path(self.command[0]).name}): "
                f"{reason}; the next request tries again",
            ) from None
        child = _Child(proc, loop, self._ids)
        _log(f"started server {child.pid}: {shlex.join(self.command)} (cwd {self.cwd})")
        try:
            reply = await child.request(
                {
                    "jsonrpc": "2.0",
                    "method": "initialize",
                    "params": {
                        "protocolVersion": BRIDGE_PROTOCOL_VERSION,
                        "capabilities": {},
                        "clientInfo": CLIENT_INFO,
                    },
                },
                None,
                self.start_timeout,
            )
            result = reply.get("result")
            if "error" in reply or not isinstance(result, dict):
                raise BridgeError(
                    SERVER_UNAVAILABLE,
                    "the MCP server refused initialize: "
                    + _clip(json.dumps(reply.get("error", reply), ensure_ascii=False)),
                )
            if not isinstance(result.get("protocolVersion"), str):
                raise BridgeError(
                    SERVER_UNAVAILABLE, "the MCP server's InitializeResult has no protocolVersion"
                )
            await child.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        except (_NotDelivered, BridgeError) as error:
            if child.dead or isinstance(error, _NotDelivered):
                await child.wait_gone(STOP_GRACE)
                raise BridgeError(
                    SERVER_UNAVAILABLE,
                    f"the MCP server process {child.exit_words()} during start-up, before "
                    "answering initialize (its stderr is in the log); the next request tries "
                    "again",
                    {"exitCode": child.returncode},
                ) from None
            child.stop_soon()
            if error.code == REQUEST_TIMEOUT:
                raise BridgeError(
                    SERVER_UNAVAILABLE,
                    f"the MCP server did not answer initialize within {self.start_timeout:g} s",
                ) from None
            _log(error.message)
            raise
        except BaseException:
            child.stop_soon()
            raise
        child.initialize_result = result
        info = result.get("serverInfo") or {}
        _log(
            f"server {child.pid} initialized: {info.get('name', '?')} {info.get('version', '')}"
            f" (protocol {result['protocolVersion']})"
        )
        self._child = child
        return child

    async def aclose(self) -> None:
        """Stop the child (lifespan shutdown)."""
        child, self._child = self._child, None
        if child is None:
            return
        if child.loop is not asyncio.get_running_loop():
            child.abandon()
            return
        _log(f"stopping server {child.pid}")
        await child.stop()

    # --- JSON-RPC ---

    async def handle_body(self, body: bytes) -> tuple[int, Any]:
        """(HTTP status, JSON payload or None) for a POSTed body."""
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            return 400, _error(None, PARSE_ERROR, f"Parse error: the body is not JSON ({error})")
        if isinstance(parsed, list):
            if not parsed:
                return 400, _error(None, INVALID_REQUEST, "Invalid request: an empty batch")
            replies = await asyncio.gather(*(self.handle_message(m) for m in parsed))
            answered = [reply for reply, _ in replies if reply is not None]
            return (200, answered) if answered else (202, None)
        reply, valid = await self.handle_message(parsed)
        if not valid:
            return 400, reply
        return (200, reply) if reply is not None else (202, None)

    async def handle_message(self, message: Any) -> tuple[dict[str, Any] | None, bool]:
        """(the reply or None, whether the message was valid JSON-RPC)."""
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return _error(
                None, INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 message"
            ), False
        method = message.get("method")
        if method is None and ("result" in message or "error" in message):
            return None, True  # a response from the client: nothing asked for one
        if not isinstance(method, str):
            return _error(None, INVALID_REQUEST, "Invalid request: no method"), False
        if "id" not in message:
            await self._notification(method, message)
            return None, True
        request_id = message["id"]
        if not _is_id(request_id):
            return _error(None, INVALID_REQUEST, "Invalid request: bad id"), False
        if "params" in message and not isinstance(message["params"], dict | list):
            return _error(request_id, INVALID_REQUEST, "Invalid request: bad params"), False
        try:
            return await self._request(method, request_id, message), True
        except BridgeError as error:
            return _error(request_id, error.code, error.message, error.data), True
        except Exception as error:  # a bug here must not hang or drop the caller
            _log(f"request {request_id!r} ({method}) failed in the bridge: {error!r}")
            return _error(request_id, INTERNAL_ERROR, "Internal error in the stdio bridge"), True

    async def _request(self, method: str, request_id: Any, message: dict[str, Any]) -> Any:
        if method == "initialize":
            child = await self._ensure_child()
            result = dict(child.initialize_result or {})
            params = message.get("params")
            requested = params.get("protocolVersion") if isinstance(params, dict) else None
            result["protocolVersion"] = _negotiate(requested, str(result["protocolVersion"]))
            return {"jsonrpc": "2.0", "id": request_id, "result": result}
        if method == "server/discover":
            return _error(
                request_id,
                METHOD_NOT_FOUND,
                "Method not found: this server speaks the initialize handshake",
                method,
            )
        forwarded = {k: v for k, v in message.items() if k != "id"}
        for attempt in range(2):
            child = await self._ensure_child()
            try:
                reply = await child.request(forwarded, request_id, self.timeout)
            except _NotDelivered:
                if attempt:
                    raise BridgeError(
                        SERVER_UNAVAILABLE, "the MCP server process is gone and did not restart"
                    ) from None
                _log(f"server {child.pid} is gone: starting a new one for request {request_id!r}")
                continue
            return {**reply, "id": request_id}
        raise AssertionError("unreachable")

    async def _notification(self, method: str, message: dict[str, Any]) -> None:
        if method == "notifications/initialized":
            return  # the bridge initialized the child itself
        child = self._live_child()
        if child is None:
            return  # a new child has nothing a notification could refer to
        params = message.get("params")
        if method == "notifications/cancelled":
            if isinstance(params, dict) and _is_id(params.get("requestId")):
                child.cancel(params["requestId"], params)
            return
        with contextlib.suppress(_NotDelivered):
            await child.send(message)

    # --- ASGI ---

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        if self.health_path is not None and path == self.health_path:
            await _respond(send, 200, {"status": "ok"})
            return
        if path not in (self.path, self.path.rstrip("/") + "/"):
            await _respond(send, 404, {"error": "not found", "mcp_path": self.path})
            return
        if method != "POST":
            refusal = _error(None, INVALID_REQUEST, "Method Not Allowed: POST JSON-RPC messages")
            await _respond(send, 405, refusal, {"allow": "POST"})
            return
        unacceptable = _check_headers(_headers(scope))
        if unacceptable is not None:
            await _respond(send, *unacceptable)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        if len(body) > MAX_BODY:
            await _respond(send, 413, _error(None, INVALID_REQUEST, "the body is too large"))
            return
        status, payload = await self.handle_body(body)
        await _respond(send, status, payload)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.aclose()
                except Exception as error:
                    _log(f"stopping the server failed: {error!r}")
                await send({"type": "lifespan.shutdown.complete"})
                return


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a start attempt's exception as seen (each waiter got it through the shield)."""
    if not task.cancelled():
        task.exception()


def _headers(scope: Scope) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for name, value in scope.get("headers", []):
        fields.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return fields


def _check_headers(fields: Mapping[str, list[str]]) -> tuple[int, Any, dict[str, str]] | None:
    """The refusal (status, body, headers) for a POST whose headers are not acceptable."""
    origin = fields.get("origin", [])
    if origin and origin[0] != "null":
        hosts = {
            h.strip().lower()
            for h in [*fields.get("host", []), *fields.get("x-forwarded-host", [])]
        }
        origin_host = origin[0].split("://", 1)[-1].rstrip("/").lower()
        if origin_host not in hosts:
            body = _error(None, INVALID_REQUEST, "Forbidden: the Origin does not match the Host")
            return 403, body, {}
    content_type = ",".join(fields.get("content-type", []))
    if "application/json" not in _media_types(content_type):
        body = _error(None, INVALID_REQUEST, "Unsupported Media Type: send application/json")
        return 415, body, {}
    accept = ",".join(fields.get("accept", []))
    if accept and not {"application/json", "application/*", "*/*"} & set(_media_types(accept)):
        body = _error(None, INVALID_REQUEST, "Not Acceptable: accept application/json")
        return 406, body, {}
    version = fields.get("mcp-protocol-version", [])
    if version and version[0] not in HANDSHAKE_VERSIONS:
        body = _error(
            None,
            UNSUPPORTED_PROTOCOL_VERSION,
            f"Unsupported MCP-Protocol-Version {version[0]!r}: this server speaks the initialize "
            "handshake",
            {"supported": list(HANDSHAKE_VERSIONS), "requested": version[0]},
        )
        return 400, body, {}
    return None


async def _read_body(receive: Receive) -> bytes | None:
    """The request body (cut just past MAX_BODY when longer); None if the client went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size > MAX_BODY or not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> None:
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
    fields = [(b"content-length", str(len(body)).encode())]
    if payload is not None:
        fields.append((b"content-type", b"application/json"))
    fields += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})


def bridge_app(
    command: Iterable[str],
    *,
    env: Mapping[str, str] | None = None,
    path: str = "/mcp",
    health_path: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    start_timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    unset_env: Iterable[str] = (),
) -> StdioBridge:
    """The ASGI app serving the stdio MCP server `command` on `path` (see the module docstring).

    `command[0]` `python`/`python3` means this interpreter (`sys.executable`). The child gets
    this process's environment (as it is when the child starts) minus `unset_env`, plus `env`;
    PYTHONPATH is `env`'s PYTHONPATH followed by this process's sys.path; its working
    directory is `cwd` (default: this module's directory). `timeout`: seconds a request may
    wait for its reply; `start_timeout` (default `timeout`): for the child's initialize.
    """
    return StdioBridge(
        command,
        env=env,
        path=path,
        health_path=health_path,
        timeout=timeout,
        start_timeout=start_timeout,
        cwd=cwd,
        unset_env=unset_env,
    )


class _LazyApp:
    """The module's `app`: built from the runtime config on first use, not at import."""

    def __init__(self) -> None:
        self._app: StdioBridge | None = None

    def build(self) -> StdioBridge:
        if self._app is None:
            from mcp_deploy_gate import runtime_config

            config = runtime_config()
            command = config.get("command")
            if (
                not isinstance(command, list)
                or not command
                or not all(isinstance(part, str) for part in command)
            ):
                raise RuntimeError(
                    "mcp_deploy_runtime.json has no stdio `command` (a non-empty list of strings)"
                )
            auth = config.get("auth") or {}
            self._app = bridge_app(
                command,
                path=str(config.get("path") or "/mcp"),
                health_path=config.get("health_path"),
                timeout=float(config.get("request_timeout") or DEFAULT_TIMEOUT),
                # The gate's token is for the gate: the stdio server never needs it.
                unset_env=[auth["token_env"]] if auth.get("token_env") else [],
            )
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.build()(scope, receive, send)


app = _LazyApp()
