"""The stdio bridge's JSON-RPC side: what it does with each message a caller posts.

Part of the stdio bridge (`mcp_deploy_stdio`, whose docstring describes the whole). This module
holds the protocol vocabulary the bridge's parts share (handshake versions, JSON-RPC error codes,
`BridgeError`, message shapes, the bridge's log line) and `JsonRpcEndpoint`, which answers a
POSTed body: it parses and checks it (a batch element by element, concurrently), answers
`initialize` from the child's cached InitializeResult with the version `negotiate` picks,
answers `server/discover` "method not found", forwards other requests to the child under
bridge ids (retrying once on a new child when the old one never got the request) and forwards
notifications (a client's cancellation mapped to the bridge id). Which child, and starting it,
is the subclass's business (`StdioBridge`). Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_deploy_stdio_child import Child

HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
"""Protocol revisions reached through the initialize handshake, oldest to newest."""
BRIDGE_PROTOCOL_VERSION = HANDSHAKE_VERSIONS[-1]
"""What the bridge asks the child for."""

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


class NotDelivered(Exception):
    """The message could not be written to the child (it is gone)."""


def log(text: str) -> None:
    try:
        sys.stderr.write(f"{LOG_PREFIX} {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: nowhere to log
        pass


def clip(text: str) -> str:
    return text if len(text) <= LOG_CLIP else f"{text[:LOG_CLIP]}… ({len(text)} characters)"


def rpc_error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def encode(message: Mapping[str, Any]) -> bytes:
    """One stdio frame: compact JSON (newlines inside strings are escaped) and a newline."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def as_bridge_id(value: Any) -> int | None:
    """`value` as one of the bridge's (integer) ids; a sloppy server's 1.0 is 1."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def same_id(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def cancellation(bridge_id: int, reason: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": bridge_id, "reason": reason},
    }


def negotiate(requested: Any, child_version: str) -> str:
    """The version to answer a client's initialize with."""
    if requested == child_version:
        return child_version
    if requested in HANDSHAKE_VERSIONS and child_version in HANDSHAKE_VERSIONS:
        older = HANDSHAKE_VERSIONS.index(requested) < HANDSHAKE_VERSIONS.index(child_version)
        if older:
            return str(requested)
    return child_version


def initialize_request() -> dict[str, Any]:
    """The bridge's own initialize, for the newest handshake version it knows."""
    return {
        "jsonrpc": "2.0",
        "method": "initialize",
        "params": {
            "protocolVersion": BRIDGE_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": CLIENT_INFO,
        },
    }


def initialize_result(reply: Mapping[str, Any]) -> dict[str, Any]:
    """The InitializeResult in the child's reply to the bridge's initialize, or BridgeError."""
    result = reply.get("result")
    if "error" in reply or not isinstance(result, dict):
        raise BridgeError(
            SERVER_UNAVAILABLE,
            "the MCP server refused initialize: "
            + clip(json.dumps(reply.get("error", reply), ensure_ascii=False)),
        )
    if not isinstance(result.get("protocolVersion"), str):
        raise BridgeError(
            SERVER_UNAVAILABLE, "the MCP server's InitializeResult has no protocolVersion"
        )
    return result


def refusal(request_id: Any, method: str) -> dict[str, Any]:
    """The answer to a server-to-client request the bridge cannot forward to a caller."""
    return rpc_error(
        request_id,
        METHOD_NOT_FOUND,
        f"the mcp-deploy stdio bridge serves stateless HTTP and cannot forward the "
        f"server-to-client request {method!r} to a client",
    )


def notification_text(method: str, params: Any) -> str:
    """A server notification as the log shows it (a log message: its level, logger, data)."""
    if method == "notifications/message" and isinstance(params, dict):
        logger = f" {params['logger']}" if params.get("logger") else ""
        data = params.get("data")
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        return f"log [{params.get('level', '?')}]{logger}: {clip(text)}"
    rendered = json.dumps(params, ensure_ascii=False) if params is not None else ""
    return f"notification {method} {clip(rendered)}".rstrip()


class JsonRpcEndpoint:
    """Answers the JSON-RPC a caller posts, through the child the subclass provides."""

    timeout: float
    """Seconds a forwarded request may wait for its reply."""

    async def _ensure_child(self) -> Child:
        """The running, initialized child (started now if need be), or BridgeError."""
        raise NotImplementedError

    def _live_child(self) -> Child | None:
        """The running child on this event loop, None when there is none (nothing starts)."""
        raise NotImplementedError

    async def handle_body(self, body: bytes) -> tuple[int, Any]:
        """(HTTP status, JSON payload or None) for a POSTed body."""
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            return 400, rpc_error(None, PARSE_ERROR, f"Parse error: the body is not JSON ({error})")
        if isinstance(parsed, list):
            if not parsed:
                return 400, rpc_error(None, INVALID_REQUEST, "Invalid request: an empty batch")
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
            return rpc_error(
                None, INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 message"
            ), False
        method = message.get("method")
        if method is None and ("result" in message or "error" in message):
            return None, True  # a response from the client: nothing asked for one
        if not isinstance(method, str):
            return rpc_error(None, INVALID_REQUEST, "Invalid request: no method"), False
        if "id" not in message:
            await self._notification(method, message)
            return None, True
        request_id = message["id"]
        if not is_id(request_id):
            return rpc_error(None, INVALID_REQUEST, "Invalid request: bad id"), False
        if "params" in message and not isinstance(message["params"], dict | list):
            return rpc_error(request_id, INVALID_REQUEST, "Invalid request: bad params"), False
        try:
            return await self._request(method, request_id, message), True
        except BridgeError as error:
            return rpc_error(request_id, error.code, error.message, error.data), True
        except Exception as error:  # a bug here must not hang or drop the caller
            log(f"request {request_id!r} ({method}) failed in the bridge: {error!r}")
            return rpc_error(request_id, INTERNAL_ERROR, "Internal error in the stdio bridge"), True

    async def _request(self, method: str, request_id: Any, message: dict[str, Any]) -> Any:
        if method == "initialize":
            child = await self._ensure_child()
            result = dict(child.initialize_result or {})
            params = message.get("params")
            requested = params.get("protocolVersion") if isinstance(params, dict) else None
            result["protocolVersion"] = negotiate(requested, str(result["protocolVersion"]))
            return {"jsonrpc": "2.0", "id": request_id, "result": result}
        if method == "server/discover":
            return rpc_error(
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
            except NotDelivered:
                if attempt:
                    raise BridgeError(
                        SERVER_UNAVAILABLE, "the MCP server process is gone and did not restart"
                    ) from None
                log(f"server {child.pid} is gone: starting a new one for request {request_id!r}")
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
            if isinstance(params, dict) and is_id(params.get("requestId")):
                child.cancel(params["requestId"], params)
            return
        with contextlib.suppress(NotDelivered):
            await child.send(message)
