"""Workers entry of an mcp-deploy artifact (`main = "src/entry.py"`, class `Default`).

Goes into the bundle as `src/entry.py`, next to the server's code (`src/`), the build-time
settings module `src/mcp_deploy_runtime.py` (entry, paths, auth mode, secret names: no
environment config, no secret values) and the vendored dependencies (`python_modules/`).

For each request it:
1. on the first request of an isolate, copies the string bindings the server reads as
   environment variables into `os.environ` (its declared secrets, plus the config names the
   deployment lists in the `MCP_DEPLOY_ENV_NAMES` binding, a JSON array), then imports the
   ASGI app, so the app sees the same environment variables as on every other target;
2. refuses a foreign `Origin` with 403, in every mode, as every target's gate does: one that
   is neither the deployment's own (the `MCP_DEPLOY_PUBLIC_URL` binding when set, else the
   origin of the request's URL: workers.dev or a route) nor one of `auth.allowed_origins`;
3. checks the auth mode: for `bearer`, the `Authorization: Bearer <token>` header is
   compared in constant time with the secret binding named by `auth.token_secret`, and
   anything else gets 401 (the health path, when set, is open for both checks);
4. hands the request to the app through the runtime's ASGI adapter (`workers.asgi.fetch`,
   or the top-level `asgi` module of older runtimes).

The runtime's adapter runs the ASGI lifespan around every request; an MCP server's lifespan
(its session manager) may start only once, so the app's lifespan is entered once per isolate
and kept open, and each request scope gets a copy of its state.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from mcp_deploy_runtime import CONFIG_JSON  # type: ignore[import-not-found]  # generated
from workers import Response, WorkerEntrypoint  # type: ignore[import-not-found]  # runtime

try:
    from workers import asgi
except ImportError:  # runtimes whose SDK has no `workers.asgi` yet
    import asgi  # type: ignore[import-not-found]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CONFIG: dict[str, Any] = json.loads(CONFIG_JSON)
ENV_NAMES_BINDING = "MCP_DEPLOY_ENV_NAMES"
ASGI_VERSION = {"version": "3.0", "spec_version": "2.0"}


def export_bindings(env: Any, secret_names: list[str]) -> None:
    """Set `os.environ[NAME]` from each string binding NAME the server reads (values are
    never logged)."""
    listed = getattr(env, ENV_NAMES_BINDING, None)
    names = [*secret_names, *(json.loads(listed) if isinstance(listed, str) else [])]
    for name in names:
        value = getattr(env, name, None)
        if isinstance(value, str):
            os.environ[name] = value


def import_app(entry: str) -> Any:
    module_name, _, attribute = entry.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


class LifespanOnce:
    """The app, with its ASGI lifespan entered once per isolate instead of per request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._ready: asyncio.Future[None] | None = None
        self._task: asyncio.Future[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.started()
        if scope["type"] == "lifespan":
            # The runtime's own per-request cycle: acknowledge it without touching the app.
            scope.setdefault("state", {}).update(self.state)
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await self.app({**scope, "state": dict(self.state)}, receive, send)

    async def started(self) -> None:
        """Run the app's lifespan startup once; raise if it failed."""
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.ensure_future(self._lifespan(self._ready))
        await asyncio.shield(self._ready)

    async def _lifespan(self, ready: asyncio.Future[None]) -> None:
        queue: asyncio.Queue[Message] = asyncio.Queue()
        queue.put_nowait({"type": "lifespan.startup"})

        async def send(message: Message) -> None:
            if ready.done():
                return
            if message["type"] == "lifespan.startup.complete":
                ready.set_result(None)
            elif message["type"] == "lifespan.startup.failed":
                ready.set_exception(RuntimeError(message.get("message") or "startup failed"))

        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        try:  # returns only at shutdown, which never comes: the isolate ends instead
            await self.app(scope, queue.get, send)
        except Exception:
            if not ready.done():  # an app without lifespan support: serve without it
                ready.set_result(None)
            else:
                raise
        if not ready.done():
            ready.set_result(None)


def unauthorized() -> Any:
    body = {"error": "unauthorized", "hint": "send Authorization: Bearer <token>"}
    headers = {"content-type": "application/json", "www-authenticate": 'Bearer realm="mcp"'}
    return Response(json.dumps(body), status=401, headers=headers)


def ambiguous() -> Any:
    """400 for more than one Authorization header (Workers joins repeats with ", "): refused
    the same way on every target (see targets/shim/mcp_deploy_gate.py)."""
    body = {
        "error": "invalid_request",
        "hint": "send exactly one Authorization header, with one bearer token",
    }
    headers = {
        "content-type": "application/json",
        "www-authenticate": 'Bearer realm="mcp", error="invalid_request"',
    }
    return Response(json.dumps(body), status=400, headers=headers)


FOREIGN_ORIGIN_BODY = {
    "jsonrpc": "2.0",
    "id": None,
    "error": {"code": -32600, "message": "Forbidden: the Origin is not allowed"},
}


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of `url`, lowercase ("" when it has none)."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def origin_allowed(origin: str | None, base: str, allowed: frozenset[str]) -> bool:
    """True when a request whose `Origin` header is `origin` (None: absent) may go on: no
    Origin, the deployment's own (`base`), or one of `allowed` (lowercase, no trailing /)."""
    if origin is None:
        return True
    value = origin.strip().rstrip("/").lower()
    return value == base or value in allowed


def foreign_origin() -> Any:
    """403 for a foreign Origin: the body every target's gate answers."""
    headers = {"content-type": "application/json"}
    return Response(json.dumps(FOREIGN_ORIGIN_BODY), status=403, headers=headers)


def misconfigured(secret: str) -> Any:
    body = {"error": "server misconfigured", "hint": f"the secret {secret} is not set"}
    return Response(json.dumps(body), status=500, headers={"content-type": "application/json"})


class Gate:
    """The Origin and auth checks in front of the app."""

    def __init__(
        self,
        mode: str,
        token_env: str,
        health_path: str | None,
        allowed_origins: list[str] | None = None,
    ) -> None:
        self.mode = mode
        self.token_env = token_env
        self.health_path = health_path
        self.allowed_origins = frozenset(
            origin.strip().rstrip("/").lower() for origin in allowed_origins or ()
        )

    def refuse(self, request: Any, env: Any) -> Any | None:
        """None to let the request through, else the response that refuses it."""
        url = str(request.url)
        if self.health_path is not None and urlsplit(url).path == self.health_path:
            return None
        public = getattr(env, "MCP_DEPLOY_PUBLIC_URL", None)
        base = origin_of(public) if isinstance(public, str) and public else origin_of(url)
        origin = request.headers.get("origin")
        if not origin_allowed(None if origin is None else str(origin), base, self.allowed_origins):
            return foreign_origin()
        if self.mode != "bearer":
            return None
        token = getattr(env, self.token_env, None)
        if not isinstance(token, str) or not token:
            return misconfigured(self.token_env)
        value = str(request.headers.get("authorization") or "")
        scheme, _, presented = value.partition(" ")
        matches = hmac.compare_digest(presented.strip().encode(), token.encode())
        if "," in value:
            return ambiguous()
        return None if scheme.lower() == "bearer" and matches else unauthorized()


_gate = Gate(
    CONFIG["auth"]["mode"],
    CONFIG["auth"]["token_env"],
    CONFIG.get("health_path"),
    CONFIG["auth"].get("allowed_origins"),
)
_server: LifespanOnce | None = None


def server(env: Any) -> LifespanOnce:
    """The app, imported on the first request (after the environment is in place)."""
    global _server
    if _server is None:
        export_bindings(env, list(CONFIG["secrets"]))
        _server = LifespanOnce(import_app(CONFIG["entry"]))
    return _server


class Default(WorkerEntrypoint):  # type: ignore[misc]  # the runtime's base class
    """The Worker: authorise, then serve the request with the server's ASGI app."""

    async def fetch(self, request: Any) -> Any:
        refused = _gate.refuse(request, self.env)
        if refused is not None:
            return refused
        return await asgi.fetch(server(self.env), request, self.env)
