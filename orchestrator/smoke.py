"""Smoke-test any MCP endpoint over streamable HTTP with the official `mcp` client.

`smoke()` runs initialize, tools/list and (when given) one tool call, timing each, and turns
failures into what a person can act on: nothing listening, 421 (the server's DNS-rebinding
check refused the host name), 401/403 (auth), a missing tool, an unexpected result. It never
prints or returns the token.
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

CLIENT_MODULES = (
    "jsonschema.validators",
    "mcp.client.session",
    "mcp.client.streamable_http",
)


@dataclass
class SmokeResult:
    """Outcome of one smoke test; `ok` False comes with `failure` and `hint`."""

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _probe_status(url: str, headers: dict[str, str]) -> int | None:
    """The HTTP status of a bare MCP initialize POST (the SDK's errors hide it), or None."""
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
        return int(httpx2.post(url, json=body, headers=wanted, timeout=10).status_code)
    except Exception:  # no status to report
        return None


def explain_failure(url: str, error: BaseException, status: int | None = None) -> tuple[str, str]:
    """(what went wrong, what to do) for an exception raised while talking to `url`, with the
    HTTP status a bare request got, when there was one."""
    text = _flatten(error)
    host = urlsplit(url).netloc
    if status == 421 or "Invalid Host header" in text:
        return (
            f"the server refused the host name {host} (421 Invalid Host header)",
            "its MCP SDK DNS-rebinding check only allows loopback host names by default; pass "
            "transport_security=TransportSecuritySettings(allowed_hosts=[...]) (or disable it "
            "behind an authenticating front door) in streamable_http_app()",
        )
    if status in (401, 403):
        return (
            "the server refused the credentials (HTTP 401/403)",
            "check the bearer token (the environment's auth token secret) or the platform's IAM "
            "permission for the caller",
        )
    if any(s in text for s in ("Connection refused", "ConnectError", "All connection attempts")):
        return (
            f"nothing is listening at {host}",
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


def _flatten(error: BaseException) -> str:
    parts = [f"{type(error).__name__}: {error}"]
    for inner in getattr(error, "exceptions", ()):
        parts.append(_flatten(inner))
    if error.__cause__ is not None:
        parts.append(_flatten(error.__cause__))
    return " | ".join(parts)


def smoke(
    url: str,
    *,
    token: str | None = None,
    tool: str | None = None,
    arguments: dict[str, Any] | None = None,
    expect: str | None = None,
    timeout: float = 30.0,
) -> SmokeResult:
    """Run the smoke test against `url`; never raises for a failing server."""
    import anyio

    result = SmokeResult(url=url)
    try:
        anyio.run(_talk, url, token, tool, arguments or {}, expect, timeout, result)
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        if result.failure is None:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            status = _probe_status(url, headers)
            result.failure, result.hint = explain_failure(url, error, status)
        return result
    return result


async def _talk(
    url: str,
    token: str | None,
    tool: str | None,
    arguments: dict[str, Any],
    expect: str | None,
    timeout: float,
    result: SmokeResult,
) -> None:
    import anyio

    # The client's own imports happen before the clock starts: only the server is timed
    # (the SDK imports jsonschema lazily at the first tool call, ~35 ms).
    for module in CLIENT_MODULES:
        importlib.import_module(module)

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with anyio.fail_after(timeout):
        await _exchange(url, headers, tool, arguments, expect, result)


async def _exchange(
    url: str,
    headers: dict[str, str],
    tool: str | None,
    arguments: dict[str, Any],
    expect: str | None,
    result: SmokeResult,
) -> None:
    import httpx2

    # The HTTP client (its TLS context alone takes tens of ms) is made before the clock starts.
    async with httpx2.AsyncClient(timeout=30, headers=headers) as http:
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
