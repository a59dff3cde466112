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


# The SDK's DNS-rebinding protection stays on at its defaults (loopback Host only): mcp-deploy's
# shims check the Origin against the deployed URL and present each request to the app as a
# loopback one (the platform's host name in X-Forwarded-Host).
app = mcp.streamable_http_app(
    streamable_http_path="/mcp",
    stateless_http=True,
    json_response=True,
)
