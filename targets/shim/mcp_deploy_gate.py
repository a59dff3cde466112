"""Shared by every runtime shim inside an artifact: runtime config, app import, auth gate.

`mcp_deploy_runtime.json` is written at build time next to this module: the server's entry,
MCP path, health path and auth mode. It holds no environment config and no secret values.
"""

from __future__ import annotations

import hmac
import importlib
import json
import os
from collections.abc import Sequence
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

    `bearer`: the request must carry exactly one `Authorization: Bearer <token>` header whose
    token equals the token secret (the environment variable `token_env`), compared in
    constant time; an empty or missing token secret, or one with a comma (which no bearer
    token has, RFC 6750), is a start-up error (fail closed). `iam` (checked by the platform)
    and `none` let every request through. The health path is always open.

    Ambiguous credentials are refused with 400 the same way on every platform, judged on what
    the platform delivers: Cloud Run passes repeated headers through as they came (more than
    one `Authorization` value), Lambda's Function URL joins them with commas into one value
    (a value with a comma). Neither is ever a valid bearer credential.
    """

    def __init__(self, mode: str, token_env: str, health_path: str | None) -> None:
        self.mode = mode
        self.health_path = health_path
        self._token = os.environ.get(token_env, "").encode() if mode == "bearer" else b""
        if mode == "bearer" and not self._token:
            raise RuntimeError(
                f"auth.mode is 'bearer' but the token secret {token_env} is empty or not set"
            )
        if b"," in self._token:
            raise RuntimeError(
                f"the token secret {token_env} contains a comma, which a bearer token cannot "
                "(RFC 6750): choose one of letters, digits and -._~+/="
            )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BearerGate:
        auth = config["auth"]
        return cls(auth["mode"], auth["token_env"], config.get("health_path"))

    def judge(self, path: str, authorization: Sequence[str]) -> int:
        """200 to let the request through, 400 for ambiguous credentials (more than one
        Authorization value, or one with a comma), else 401 unless the one value is
        `Bearer <the token>`. `authorization`: every Authorization value the request carries,
        as the platform delivers them."""
        if self.mode != "bearer" or path == self.health_path:
            return 200
        value = authorization[0] if authorization else ""
        scheme, _, presented = value.partition(" ")
        matches = hmac.compare_digest(presented.strip().encode(), self._token)
        if len(authorization) > 1 or "," in value:
            return 400
        return 200 if scheme.lower() == "bearer" and matches else 401


UNAUTHORIZED_BODY = json.dumps(
    {"error": "unauthorized", "hint": "send Authorization: Bearer <token>"}
).encode()
UNAUTHORIZED_HEADERS = {
    "content-type": "application/json",
    "www-authenticate": 'Bearer realm="mcp"',
}
AMBIGUOUS_BODY = json.dumps(
    {
        "error": "invalid_request",
        "hint": "send exactly one Authorization header, with one bearer token",
    }
).encode()
AMBIGUOUS_HEADERS = {
    "content-type": "application/json",
    "www-authenticate": 'Bearer realm="mcp", error="invalid_request"',
}
REFUSALS: dict[int, tuple[dict[str, str], bytes]] = {
    400: (AMBIGUOUS_HEADERS, AMBIGUOUS_BODY),
    401: (UNAUTHORIZED_HEADERS, UNAUTHORIZED_BODY),
}
"""The response (headers, JSON body) for each refusing status of `BearerGate.judge`."""
