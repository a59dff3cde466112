"""Container entry of an mcp-deploy image: serve the ASGI app with uvicorn on $PORT.

Cloud Run's contract: listen on `$PORT` (8080 by default) on all interfaces, stop gracefully
within the grace period after SIGTERM (uvicorn finishes in-flight requests, then runs the
lifespan shutdown). `MCP_DEPLOY_HOST` overrides the bind address (the local emulation binds
127.0.0.1). Requests pass the auth gate of `mcp_deploy_gate` before reaching the app (every
Authorization header goes to the gate, which refuses more than one with 400).

With `MCP_DEPLOY_SECRETS_STDIN=1` (the local emulation), the first line of stdin is a JSON
object NAME → secret value, set as environment variables before the server is imported; the
values never pass through the container engine's (on-disk) configuration. In the cloud, Cloud
Run sets secret env vars itself.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import uvicorn
from mcp_deploy_gate import REFUSALS, BearerGate, import_app, runtime_config

GRACE_SECONDS = 8  # Cloud Run sends SIGKILL 10 s after SIGTERM


class GatedApp:
    """ASGI middleware applying the auth gate to HTTP requests."""

    def __init__(self, app: Any, gate: BearerGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            authorization = [
                value.decode("latin-1")
                for name, value in scope.get("headers", [])
                if name == b"authorization"
            ]
            status = self.gate.judge(scope.get("path", ""), authorization)
            if status != 200:
                fields, body = REFUSALS[status]
                headers = [(k.encode(), v.encode()) for k, v in fields.items()]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def load_secrets_from_stdin() -> None:
    """Set the secrets handed over on stdin (local emulation only)."""
    if os.environ.get("MCP_DEPLOY_SECRETS_STDIN") != "1":
        return
    values: dict[str, str] = json.loads(sys.stdin.readline() or "{}")
    sys.stdin.close()
    for name, value in values.items():
        os.environ[name] = value


def main() -> None:
    load_secrets_from_stdin()
    config = runtime_config()
    app = GatedApp(import_app(config["entry"]), BearerGate.from_config(config))
    uvicorn.run(
        app,
        host=os.environ.get("MCP_DEPLOY_HOST", "0.0.0.0"),
        port=int(os.environ.get("PORT", "8080")),
        proxy_headers=True,
        forwarded_allow_ips="*",
        timeout_graceful_shutdown=GRACE_SECONDS,
        log_level=os.environ.get("MCP_DEPLOY_LOG_LEVEL", "info"),
    )


if __name__ == "__main__":
    main()
