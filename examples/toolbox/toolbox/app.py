"""The toolbox MCP server: stateless streamable HTTP with JSON responses.

`app` is the ASGI application mcp-deploy serves (entry `toolbox.app:app`). Stateless mode with
JSON responses suits every target: Lambda and Workers keep no process between requests, and
Cloud Run may route each request to a different instance.

Tools:
- `add(a, b)`: integer sum;
- `greet(name)`: uses the GREETING config value, so a test can see config reach the server;
- `word_count(text)`: counts words;
- `secret_fingerprint()`: proves the TOOLBOX_API_KEY secret arrived without revealing it (the
  first 12 hex digits of its SHA-256, which a test compares with its own canary's).
"""

from __future__ import annotations

import hashlib
import os

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

mcp = MCPServer("toolbox", instructions="Small arithmetic and text tools.")


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@mcp.tool()
def greet(name: str) -> str:
    """Greet someone with the configured GREETING."""
    return f"{os.environ.get('GREETING', 'Hello')}, {name}!"


@mcp.tool()
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


@mcp.tool()
def secret_fingerprint() -> dict[str, object]:
    """Say whether TOOLBOX_API_KEY is set, with a short SHA-256 fingerprint of it."""
    value = os.environ.get("TOOLBOX_API_KEY")
    if value is None:
        return {"configured": False}
    return {"configured": True, "sha256_12": hashlib.sha256(value.encode()).hexdigest()[:12]}


# Behind a cloud front door the Host header is the platform's host name, which the SDK's
# DNS-rebinding check (meant for servers on a developer's loopback) would refuse with 421.
# Callers are authenticated by the platform or mcp-deploy's bearer check instead.
app = mcp.streamable_http_app(
    streamable_http_path="/mcp",
    stateless_http=True,
    json_response=True,
    transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
)
