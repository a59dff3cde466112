"""Container entry of an mcp-deploy image: serve the ASGI app with uvicorn on $PORT.

Cloud Run's contract: listen on `$PORT` (8080 by default) on all interfaces, stop gracefully
within the grace period after SIGTERM (uvicorn finishes in-flight requests, then runs the
lifespan shutdown). `MCP_DEPLOY_HOST` overrides the bind address (the local emulation binds
127.0.0.1). Requests pass the gate of `mcp_deploy_gate` before reaching the app (every
Authorization header goes to the gate, which refuses more than one with 400; the Origin check;
oauth mode's metadata and token checks, fetching the issuer's keys in a thread when needed).
The platform's base URL is `(X-Forwarded-Proto or https)://` + Host, as Cloud Run's front end
presents them. A request let through reaches the app with Host `127.0.0.1:$PORT`, no Origin,
and the original host and scheme in X-Forwarded-Host / X-Forwarded-Proto.

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
from mcp_deploy_gate import PRESENTED, Gate, first, import_app, runtime_config

GRACE_SECONDS = 8  # Cloud Run sends SIGKILL 10 s after SIGTERM
PRESENTED_NAMES = frozenset(name.encode() for name in PRESENTED)


class GatedApp:
    """ASGI middleware applying the gate to HTTP requests."""

    def __init__(self, app: Any, gate: Gate) -> None:
        self.app = app
        self.gate = gate
        self.presented_host = gate.presented_host.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raw: list[tuple[bytes, bytes]] = scope.get("headers", [])
            fields: dict[str, list[str]] = {}
            for name, value in raw:
                fields.setdefault(name.decode("latin-1").lower(), []).append(
                    value.decode("latin-1")
                )
            host = first(fields, "host")
            proto = first(fields, "x-forwarded-proto") or "https"
            answer = await self.gate.check_async(
                scope.get("method", ""), scope.get("path", ""), fields, f"{proto}://{host}"
            )
            if answer is not None:
                headers = [(k.encode(), v.encode()) for k, v in answer.headers.items()]
                start = {"type": "http.response.start", "status": answer.status}
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": answer.body})
                return
            presented = [
                (b"host", self.presented_host),
                *[(k, v) for k, v in raw if k not in PRESENTED_NAMES],
                (b"x-forwarded-host", host.encode("latin-1")),
                (b"x-forwarded-proto", proto.encode("latin-1")),
            ]
            scope = {**scope, "headers": presented}
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
    app = GatedApp(import_app(config["entry"]), Gate(config))
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
