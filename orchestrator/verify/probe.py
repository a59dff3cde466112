"""What the server says about itself: one MCP session over streamable HTTP, with the token.

`probe(url, token)` initializes (protocol 2025-11-25), sends `notifications/initialized`, and
lists what each advertised capability offers (tools, prompts, resources, resource templates;
first page only), so `scenarios.plan` can tell which conformance scenarios apply. A stateful
server's session (Mcp-Session-Id) is ended with DELETE afterwards. `ProbeError` says what went
wrong in plain terms, with the HTTP status when there was one. The token is never part of a
message.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = "2025-11-25"
CLIENT_INFO = {"name": "mcp-deploy-verify", "version": "1"}
ACCEPT = "application/json, text/event-stream"


class ProbeError(Exception):
    """The server could not be talked to, or answered something that is not MCP."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class ServerFacts:
    """The initialize result and what the server lists."""

    name: str = ""
    version: str = ""
    protocol_version: str = ""
    capabilities: dict[str, Any] = field(default_factory=dict)
    stateful: bool = False
    tools: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "protocol_version": self.protocol_version,
            "capabilities": sorted(self.capabilities),
            "stateful": self.stateful,
            "tools": len(self.tools),
            "prompts": len(self.prompts),
            "resources": len(self.resources),
            "resource_templates": len(self.templates),
        }


def initialize_body(request_id: int | str = 0) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": CLIENT_INFO,
        },
    }


def parse_reply(content_type: str, text: str, request_id: Any) -> dict[str, Any] | None:
    """The JSON-RPC response to `request_id` in a body (JSON, or an SSE stream); None when
    the body holds none."""
    messages: list[Any] = []
    if "text/event-stream" in content_type.lower():
        data: list[str] = []
        for line in [*text.splitlines(), ""]:
            if line == "":
                if data:
                    with contextlib.suppress(ValueError):
                        messages.append(json.loads("\n".join(data)))
                data = []
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
    else:
        try:
            document = json.loads(text)
        except ValueError:
            return None
        messages = document if isinstance(document, list) else [document]
    for message in messages:
        if (
            isinstance(message, dict)
            and message.get("id") == request_id
            and ("result" in message or "error" in message)
        ):
            return message
    return None


class _Session:
    def __init__(self, client: Any, url: str, token: str | None) -> None:
        self.client, self.url = client, url
        self.headers = {"Accept": ACCEPT, "Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.next_id = 1

    def post(self, body: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        try:
            answer = self.client.post(self.url, content=json.dumps(body), headers=self.headers)
        except Exception as error:
            raise ProbeError(f"cannot reach {self.url}: {type(error).__name__}: {error}") from None
        if "id" not in body:
            return answer, None
        return answer, parse_reply(answer.headers.get("content-type", ""), answer.text, body["id"])

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id, self.next_id = self.next_id, self.next_id + 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            body["params"] = params
        answer, reply = self.post(body)
        if answer.status_code >= 400 or reply is None:
            raise ProbeError(
                f"{method} was answered HTTP {answer.status_code}"
                + ("" if reply else " without a JSON-RPC response"),
                int(answer.status_code),
            )
        if "error" in reply:
            raise ProbeError(f"{method} failed: {json.dumps(reply['error'])[:300]}")
        result = reply.get("result")
        return result if isinstance(result, dict) else {}


def probe(url: str, token: str | None, timeout: float = 30.0, transport: Any = None) -> ServerFacts:
    """See the module docstring (`transport`: an httpx2 transport, for tests)."""
    import httpx2

    with httpx2.Client(timeout=timeout, transport=transport) as client:
        session = _Session(client, url, token)
        answer, reply = session.post(initialize_body())
        status = int(answer.status_code)
        if status >= 400:
            raise ProbeError(f"initialize was answered HTTP {status}", status)
        if reply is None or not isinstance(reply.get("result"), dict):
            what = "an error: " + json.dumps(reply["error"])[:300] if reply else "no JSON-RPC reply"
            raise ProbeError(f"initialize got {what}", status)
        result = reply["result"]
        facts = _facts(result)
        session_id = answer.headers.get("mcp-session-id")
        if session_id:
            facts.stateful = True
            session.headers["Mcp-Session-Id"] = session_id
        session.headers["MCP-Protocol-Version"] = facts.protocol_version or PROTOCOL_VERSION
        session.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        try:
            _lists(session, facts)
        finally:
            if session_id:
                with contextlib.suppress(Exception):  # ending the session is a courtesy
                    client.delete(url, headers=session.headers)
    return facts


def _facts(result: dict[str, Any]) -> ServerFacts:
    found = result.get("serverInfo")
    info: dict[str, Any] = found if isinstance(found, dict) else {}
    capabilities = result.get("capabilities")
    return ServerFacts(
        name=str(info.get("name", "")),
        version=str(info.get("version", "")),
        protocol_version=str(result.get("protocolVersion", "")),
        capabilities=capabilities if isinstance(capabilities, dict) else {},
    )


def _lists(session: _Session, facts: ServerFacts) -> None:
    """Fill in what the advertised capabilities list; a list that fails stays empty (the
    scenario that lists it reports the failure)."""
    offered = facts.capabilities
    wanted = [
        ("tools", "tools/list", "tools", "name", "tools"),
        ("prompts", "prompts/list", "prompts", "name", "prompts"),
        ("resources", "resources/list", "resources", "uri", "resources"),
        ("resources", "resources/templates/list", "resourceTemplates", "uriTemplate", "templates"),
    ]
    for capability, method, key, attribute, slot in wanted:
        if capability not in offered:
            continue
        with contextlib.suppress(ProbeError):
            setattr(facts, slot, _names(session.call(method, {}), key, attribute))


def _names(result: dict[str, Any], key: str, attribute: str) -> list[str]:
    items = result.get(key)
    if not isinstance(items, list):
        return []
    return [str(item[attribute]) for item in items if isinstance(item, dict) and attribute in item]
