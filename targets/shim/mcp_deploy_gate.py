"""Shared by every runtime shim inside an artifact: runtime config, app import, auth gate.

`mcp_deploy_runtime.json` is written at build time next to this module: the server's entry,
MCP path, health path and auth mode. It holds no environment config and no secret values.
"""

from __future__ import annotations

import hmac
import importlib
import json
import os
from pathlib import Path
from typing import Any

RUNTIME_CONFIG = Path(__file__).with_name("mcp_deploy_runtime.json")


def runtime_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(RUNTIME_CONFIG.read_text(encoding="utf-8"))
    return config


def import_app(entry: str) -> Any:
    """The ASGI app named by `module:attribute`."""
    module_name, _, attribute = entry.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


class BearerGate:
    """Who may call the server, per the spec's auth mode.

    `bearer`: the `Authorization: Bearer <token>` header must equal the token secret (the
    environment variable `token_env`), compared in constant time; an empty or missing token
    secret is a start-up error (fail closed). `iam` (checked by the platform) and `none`
    let every request through. The health path is always open.
    """

    def __init__(self, mode: str, token_env: str, health_path: str | None) -> None:
        self.mode = mode
        self.health_path = health_path
        self._token = os.environ.get(token_env, "").encode() if mode == "bearer" else b""
        if mode == "bearer" and not self._token:
            raise RuntimeError(
                f"auth.mode is 'bearer' but the token secret {token_env} is empty or not set"
            )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BearerGate:
        auth = config["auth"]
        return cls(auth["mode"], auth["token_env"], config.get("health_path"))

    def allows(self, path: str, authorization: str) -> bool:
        if self.mode != "bearer" or path == self.health_path:
            return True
        scheme, _, presented = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), self._token
        )


UNAUTHORIZED_BODY = json.dumps(
    {"error": "unauthorized", "hint": "send Authorization: Bearer <token>"}
).encode()
UNAUTHORIZED_HEADERS = {
    "content-type": "application/json",
    "www-authenticate": 'Bearer realm="mcp"',
}
