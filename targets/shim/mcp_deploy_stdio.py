"""Serve a stdio MCP server over MCP streamable HTTP (stateless, JSON responses).

Most published MCP servers are stdio programs: they read newline-delimited JSON-RPC on stdin
and write it on stdout (the MCP stdio transport). This module is an ASGI app that puts such a
program behind the HTTP surface every target serves, using only the standard library, with the
two shims beside it: `mcp_deploy_stdio_jsonrpc` (what each JSON-RPC message gets) and
`mcp_deploy_stdio_child` (the child process: its pipes, replies matched by id, its stop):

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
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from mcp_deploy_stdio_child import Child, start_child
from mcp_deploy_stdio_jsonrpc import (
    HANDSHAKE_VERSIONS,
    INVALID_REQUEST,
    UNSUPPORTED_PROTOCOL_VERSION,
    BridgeError,
    JsonRpcEndpoint,
    log,
    rpc_error,
)

__all__ = ["BridgeError", "StdioBridge", "app", "bridge_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_TIMEOUT = 60.0
MAX_BODY = 16 * 1024 * 1024


class StdioBridge(JsonRpcEndpoint):
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
        self._child: Child | None = None
        self._starting: asyncio.Task[Child] | None = None

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
        this process's sys.path (so vendored packages import in the child); HOME the temp
        directory when unset."""
        environment = {k: v for k, v in os.environ.items() if k not in self.unset_env}
        extra = dict(self.env)
        first = [p for p in extra.pop("PYTHONPATH", "").split(os.pathsep) if p]
        paths = [os.path.abspath(p) for p in [*first, *sys.path] if p]
        environment.update(extra)
        environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        environment.setdefault("PYTHONUNBUFFERED", "1")
        # Lambda sets no HOME, and servers write caches and config there: the temp directory
        # is the one place both platforms let a process write.
        environment.setdefault("HOME", tempfile.gettempdir())
        return environment

    def _live_child(self) -> Child | None:
        child = self._child
        if child is None or child.loop is not asyncio.get_running_loop() or not child.alive():
            return None
        return child

    async def _ensure_child(self) -> Child:
        loop = asyncio.get_running_loop()
        child = self._child
        if child is not None and child.loop is not loop:
            log(f"called from another event loop: abandoning server {child.pid}")
            child.abandon()
            self._child = child = None
        if child is not None and child.alive():
            return child
        starting = self._starting
        if starting is None or starting.done() or starting.get_loop() is not loop:
            starting = self._starting = loop.create_task(self._start())
            starting.add_done_callback(_retrieve)
        return await asyncio.shield(starting)

    async def _start(self) -> Child:
        self._child = await start_child(
            self.command,
            environment=self.child_environment,
            cwd=self.cwd,
            ids=self._ids,
            timeout=self.start_timeout,
        )
        return self._child

    async def aclose(self) -> None:
        """Stop the child (lifespan shutdown)."""
        child, self._child = self._child, None
        if child is None:
            return
        if child.loop is not asyncio.get_running_loop():
            child.abandon()
            return
        log(f"stopping server {child.pid}")
        await child.stop()

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
            refusal = rpc_error(None, INVALID_REQUEST, "Method Not Allowed: POST JSON-RPC messages")
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
            await _respond(send, 413, rpc_error(None, INVALID_REQUEST, "the body is too large"))
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
                    log(f"stopping the server failed: {error!r}")
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
            body = rpc_error(None, INVALID_REQUEST, "Forbidden: the Origin does not match the Host")
            return 403, body, {}
    content_type = ",".join(fields.get("content-type", []))
    if "application/json" not in _media_types(content_type):
        body = rpc_error(None, INVALID_REQUEST, "Unsupported Media Type: send application/json")
        return 415, body, {}
    accept = ",".join(fields.get("accept", []))
    if accept and not {"application/json", "application/*", "*/*"} & set(_media_types(accept)):
        body = rpc_error(None, INVALID_REQUEST, "Not Acceptable: accept application/json")
        return 406, body, {}
    version = fields.get("mcp-protocol-version", [])
    if version and version[0] not in HANDSHAKE_VERSIONS:
        body = rpc_error(
            None,
            UNSUPPORTED_PROTOCOL_VERSION,
            f"Unsupported MCP-Protocol-Version {version[0]!r}: this server speaks the initialize "
            "handshake",
            {"supported": list(HANDSHAKE_VERSIONS), "requested": version[0]},
        )
        return 400, body, {}
    return None


def _media_types(value: str) -> list[str]:
    return [part.split(";")[0].strip().lower() for part in value.split(",")]


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
