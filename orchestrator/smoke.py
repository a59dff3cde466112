"""Smoke-test any MCP endpoint over streamable HTTP with the official `mcp` client.

`smoke()` runs initialize, tools/list and (when given) one tool call, timing each, and turns
failures into what a person can act on: nothing listening, 421 (the server's DNS-rebinding
check refused the Host it was presented: the hint is the code to write for the MCP SDK the
artifact contains), a session the server lost between requests (404 to a request carrying
Mcp-Session-Id: a stateful server behind several instances), 401/403 (auth), a missing tool, an
unexpected result. It records whether the server is stateful (it answered initialize with an
Mcp-Session-Id) and the HTTP status of a failure. It never prints or returns the token.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from orchestrator.smoke_hints import STATELESS_HINT, host_hint

CLIENT_MODULES = (
    "jsonschema.validators",
    "mcp.client.session",
    "mcp.client.streamable_http",
)


@dataclass
class SmokeResult:
    """Outcome of one smoke test; `ok` False comes with `failure` and `hint`.

    `status`: the HTTP status that made the exchange fail (or a bare initialize's), if any.
    `session_id`: the server answered initialize with an Mcp-Session-Id header (it is
    stateful: requests of one session must reach the same instance).
    """

    url: str
    ok: bool = False
    server: str | None = None
    tools: list[str] = field(default_factory=list)
    first_response_ms: float | None = None
    list_tools_ms: float | None = None
    call_ms: float | None = None
    # Set by deploy: from starting the server to its first MCP response.
    cold_start_ms: float | None = None
    failure: str | None = None
    hint: str | None = None
    status: int | None = None
    session_id: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Seen:
    """What the HTTP responses of the exchange showed (filled by an httpx response hook)."""

    session_id: bool = False
    status: int | None = None  # the first error status
    session_lost: bool = False

    async def response(self, response: Any) -> None:
        if response.headers.get("mcp-session-id"):
            self.session_id = True
        code, request = int(response.status_code), response.request
        if code >= 400 and self.status is None and request.method == "POST":
            self.status = code
        if code == 404 and request.method != "DELETE" and request.headers.get("mcp-session-id"):
            self.session_lost = True


def _probe(url: str, headers: dict[str, str]) -> tuple[int | None, str]:
    """(HTTP status, start of the body) of a bare MCP initialize POST (the SDK's errors hide
    them), or (None, '')."""
    import httpx2

    body = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "mcp-deploy-smoke", "version": "1"},
        },
    }
    wanted = {**headers, "Accept": "application/json, text/event-stream"}
    try:
        answer = httpx2.post(url, json=body, headers=wanted, timeout=10)
        return int(answer.status_code), answer.text[:200]
    except Exception:  # no status to report
        return None, ""


def explain_failure(
    url: str,
    error: BaseException,
    status: int | None = None,
    *,
    host: str | None = None,
    sdk_of: Callable[[], Mapping[str, str]] | None = None,
    body: str = "",
    session_lost: bool = False,
) -> tuple[str, str]:
    """(what went wrong, what to do) for an exception raised while talking to `url`, with the
    HTTP status (and start of the body) a request got, when there was one. `host` is the Host
    the deployment presents to the server (default: the URL's); `sdk_of` (called only for a
    421) names the MCP SDK distributions in the artifact; `session_lost`: a request carrying
    Mcp-Session-Id was answered 404."""
    text = _flatten(error)
    netloc = urlsplit(url).netloc
    if session_lost:
        return (
            "the server lost the MCP session (Mcp-Session-Id) between requests: a request in "
            "the session was answered 404",
            STATELESS_HINT,
        )
    if status == 421 or "Invalid Host header" in text:
        presented = host or netloc
        refused_by = "mcp" if "Invalid Host header" in body + text else None
        refused_by = "fastmcp" if "Misdirected Request" in body else refused_by
        return (
            f"the server refused the request's Host (421: its DNS-rebinding check allows only "
            f"the host names it was given; mcp-deploy's shims present each request to a server "
            f"as a loopback one, Host 127.0.0.1:<port>, with {presented} in X-Forwarded-Host)",
            host_hint(presented, _sdk(sdk_of), refused_by),
        )
    if status in (401, 403):
        return (
            "the server refused the credentials (HTTP 401/403)",
            "check the bearer token (the environment's auth token secret) or the platform's IAM "
            "permission for the caller",
        )
    if any(s in text for s in ("Connection refused", "ConnectError", "All connection attempts")):
        return (
            f"nothing is listening at {netloc}",
            "the server did not start or has stopped; look at its log",
        )
    if status is not None and status >= 500:
        return (
            f"the server failed to handle the request (HTTP {status})",
            "its log says why: on Lambda, an error while importing the server (init) or in the "
            "handler; elsewhere, an exception in the server",
        )
    if status == 404:
        return (f"no MCP endpoint at {urlsplit(url).path}", "check server.path in the spec")
    if isinstance(error, TimeoutError) or "Timeout" in text:
        return ("the server did not answer in time", "look at its log; raise smoke.timeout")
    answered = f" (HTTP {status})" if status is not None else ""
    return (f"the MCP exchange failed{answered}: {text[:500]}", "look at the server's log")


def _sdk(sdk_of: Callable[[], Mapping[str, str]] | None) -> Mapping[str, str] | None:
    try:
        return sdk_of() if sdk_of is not None else None
    except Exception:  # an unreadable artifact leaves the hint generic
        return None


def _flatten(error: BaseException) -> str:
    parts = [f"{type(error).__name__}: {error}"]
    for inner in getattr(error, "exceptions", ()):
        parts.append(_flatten(inner))
    if error.__cause__ is not None:
        parts.append(_flatten(error.__cause__))
    return " | ".join(parts)


def check_url(url: str) -> None:
    """`InputError` (exit 2) unless `url` is an http(s) URL with a host and a valid port."""
    from orchestrator.errors import input_error

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not one)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and url.isprintable()
        problem = None if ok and " " not in url else "not an http:// or https:// URL with a host"
    except ValueError as error:
        problem = f"not a valid URL: {error}"
    if problem:
        raise input_error("URL", f"'{url}' is {problem}", "e.g. http://127.0.0.1:8080/mcp")


def smoke(
    url: str,
    *,
    token: str | None = None,
    tool: str | None = None,
    arguments: dict[str, Any] | None = None,
    expect: str | None = None,
    timeout: float = 30.0,
    host: str | None = None,
    sdk_of: Callable[[], Mapping[str, str]] | None = None,
) -> SmokeResult:
    """Run the smoke test against `url`; never raises for a failing server.

    `host`: the Host the deployment presents to the server (a local front door's run.app or
    Function URL name; default: the URL's). `sdk_of`: returns the MCP SDK distributions in the
    artifact ({"mcp": "1.26.0"}), called only when the server answers 421, for its hint.
    Raises `InputError` for a URL that is not an http(s) URL (`check_url`)."""
    import anyio

    check_url(url)
    result = SmokeResult(url=url)
    seen = _Seen()
    try:
        anyio.run(_talk, url, token, tool, arguments or {}, expect, timeout, result, seen)
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        if result.failure is None:
            status, body = (None, "")
            if not seen.session_lost:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                status, body = _probe(url, headers)
            result.status = seen.status if seen.status is not None else status
            result.failure, result.hint = explain_failure(
                url,
                error,
                result.status,
                host=host,
                sdk_of=sdk_of,
                body=body,
                session_lost=seen.session_lost,
            )
    finally:
        result.session_id = seen.session_id
    return result


async def _talk(
    url: str,
    token: str | None,
    tool: str | None,
    arguments: dict[str, Any],
    expect: str | None,
    timeout: float,
    result: SmokeResult,
    seen: _Seen,
) -> None:
    import anyio

    # The client's own imports happen before the clock starts: only the server is timed
    # (the SDK imports jsonschema lazily at the first tool call, ~35 ms).
    for module in CLIENT_MODULES:
        importlib.import_module(module)

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with anyio.fail_after(timeout):
        await _exchange(url, headers, tool, arguments, expect, result, seen)


async def _exchange(
    url: str,
    headers: dict[str, str],
    tool: str | None,
    arguments: dict[str, Any],
    expect: str | None,
    result: SmokeResult,
    seen: _Seen,
) -> None:
    import httpx2

    # The HTTP client (its TLS context alone takes tens of ms) is made before the clock starts.
    hooks = {"response": [seen.response]}
    async with httpx2.AsyncClient(timeout=30, headers=headers, event_hooks=hooks) as http:
        start = time.perf_counter()
        await _session(url, http, tool, arguments, expect, result, start)


async def _session(
    url: str,
    http: Any,
    tool: str | None,
    arguments: dict[str, Any],
    expect: str | None,
    result: SmokeResult,
    start: float,
) -> None:
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        initialized = await session.initialize()
        result.first_response_ms = (time.perf_counter() - start) * 1000
        result.server = initialized.server_info.name
        started = time.perf_counter()
        listed = await session.list_tools()
        result.list_tools_ms = (time.perf_counter() - started) * 1000
        result.tools = sorted(t.name for t in listed.tools)
        if tool is not None:
            if tool not in result.tools:
                result.failure = f"the server offers no tool '{tool}'"
                result.hint = "offered: " + (", ".join(result.tools) or "none")
                return
            started = time.perf_counter()
            called = await session.call_tool(tool, arguments)
            result.call_ms = (time.perf_counter() - started) * 1000
            text = json.dumps(called.structured_content) + " ".join(
                getattr(item, "text", "") for item in called.content
            )
            if called.is_error:
                result.failure = f"tool '{tool}' reported an error: {text[:300]}"
                result.hint = "check smoke.arguments and the server's log"
                return
            if expect is not None and expect not in text:
                result.failure = f"tool '{tool}' answered without '{expect}'"
                result.hint = f"it answered: {text[:300]}"
                return
    result.ok = True
