"""Shared by every runtime shim inside an artifact: runtime config, app import, the gate.

`mcp_deploy_runtime.json` is written at build time next to this module: the server's entry,
MCP path, health path and auth settings. It holds no environment config and no secret values.

`Gate` judges each request before the server sees it, in this order (the same on every
target and runtime, see docs): the health path always passes; in oauth mode the Protected
Resource Metadata paths are answered here; a request with an `Origin` that is neither the
deployment's own (its public base URL) nor one of `auth.allowed_origins` is refused with 403;
then the auth mode's check (`BearerGate` for bearer/iam/none, `mcp_deploy_oauth` for oauth,
imported only then: it needs PyJWT). A request let through reaches the server as a loopback
one (`loopback_headers`): Host `127.0.0.1:<PORT or 8080>`, no Origin, the original host and
scheme in X-Forwarded-Host / X-Forwarded-Proto — so the MCP SDKs' DNS-rebinding protection
stays on, at its defaults.

The public base URL (`scheme://host[:port]`) is `MCP_DEPLOY_PUBLIC_URL` when set (the local
emulations set it to the loopback URL their clients use; a custom domain can), else what the
platform says (the shim passes it in: Lambda's Function URL domain, Cloud Run's Host).
"""

from __future__ import annotations

import asyncio
import hmac
import importlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

RUNTIME_CONFIG = Path(__file__).with_name("mcp_deploy_runtime.json")
PUBLIC_URL_VARIABLE = "MCP_DEPLOY_PUBLIC_URL"
Fields = Mapping[str, Sequence[str]]
"""A request's header values by lowercase name, as the platform delivered them."""


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
FOREIGN_ORIGIN_BODY = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "Forbidden: the Origin is not allowed"},
    }
).encode()
REFUSALS: dict[int, tuple[dict[str, str], bytes]] = {
    400: (AMBIGUOUS_HEADERS, AMBIGUOUS_BODY),
    401: (UNAUTHORIZED_HEADERS, UNAUTHORIZED_BODY),
    403: ({"content-type": "application/json"}, FOREIGN_ORIGIN_BODY),
}
"""The response (headers, JSON body) for each refusing status of `BearerGate.judge`, and 403
for a foreign Origin (every mode)."""


class Answer(NamedTuple):
    """What the gate answers instead of the server."""

    status: int
    headers: dict[str, str]
    body: bytes


FOREIGN_ORIGIN = Answer(403, *REFUSALS[403])
KEYS_UNAVAILABLE = Answer(
    503,
    {"content-type": "application/json"},
    json.dumps(
        {"error": "temporarily_unavailable", "hint": "the issuer's keys cannot be fetched"}
    ).encode(),
)


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of `url`, lowercase, without path ("" when it has none)."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def first(fields: Fields, name: str) -> str:
    """The first value of header `name` ("" when absent), up to its first comma."""
    values = fields.get(name)
    return values[0].split(",", 1)[0].strip() if values else ""


class Gate:
    """Everything checked before a request reaches the server (see the module docstring)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        auth = config.get("auth") or {}
        self.mode = str(auth.get("mode", "bearer"))
        self.path = str(config.get("path") or "/mcp")
        self.health_path = config.get("health_path")
        self.bearer = BearerGate(
            self.mode, str(auth.get("token_env") or "MCP_AUTH_TOKEN"), self.health_path
        )
        self.public_url = origin_of(os.environ.get(PUBLIC_URL_VARIABLE, ""))
        self.allowed_origins = frozenset(
            origin.strip().rstrip("/").lower() for origin in auth.get("allowed_origins") or []
        )
        self.presented_host = f"127.0.0.1:{os.environ.get('PORT') or '8080'}"
        self.oauth: Any = None
        self._fetch_due: type[Exception] = _NeverRaised
        self._unavailable: type[Exception] = _NeverRaised
        if self.mode == "oauth":
            module = _oauth_module()
            self.oauth = module.OAuth(dict(auth), self.path)
            self._fetch_due, self._unavailable = module.FetchDue, module.KeysUnavailable

    def base(self, platform_base: str) -> str:
        """The public base URL: MCP_DEPLOY_PUBLIC_URL, else the platform's."""
        return self.public_url or platform_base.rstrip("/")

    def check(self, method: str, path: str, fields: Fields, platform_base: str) -> Answer | None:
        """None to let the request through, else the answer (fetching the issuer's keys
        here when needed: for callers without an event loop)."""
        for _ in range(3):
            try:
                return self._check(method, path, fields, platform_base)
            except self._fetch_due as due:
                self.oauth.refresh(getattr(due, "generation", 0))
            except self._unavailable:
                break
        return KEYS_UNAVAILABLE

    async def check_async(
        self, method: str, path: str, fields: Fields, platform_base: str
    ) -> Answer | None:
        """`check` for callers on an event loop: a fetch of the keys runs in a thread."""
        for _ in range(3):
            try:
                return self._check(method, path, fields, platform_base)
            except self._fetch_due as due:
                await asyncio.to_thread(self.oauth.refresh, getattr(due, "generation", 0))
            except self._unavailable:
                break
        return KEYS_UNAVAILABLE

    def _check(self, method: str, path: str, fields: Fields, platform_base: str) -> Answer | None:
        if self.health_path is not None and path == self.health_path:
            return None
        base = self.base(platform_base)
        oauth = self.oauth
        if oauth is not None and path in oauth.metadata_paths:
            return Answer(*oauth.metadata(method, base))
        for origin in fields.get("origin", ()):
            allowed = origin.strip().rstrip("/").lower()
            if allowed != base.lower() and allowed not in self.allowed_origins:
                return FOREIGN_ORIGIN
        authorization = fields.get("authorization", ())
        if oauth is None:
            status = self.bearer.judge(path, authorization)
            return None if status == 200 else Answer(status, *REFUSALS[status])
        if len(authorization) > 1 or any("," in value for value in authorization):
            return Answer(400, *REFUSALS[400])
        refusal = oauth.judge(authorization, base)
        return None if refusal is None else Answer(*refusal)

    def loopback_headers(
        self, headers: Sequence[tuple[str, str]], host: str, proto: str
    ) -> list[tuple[str, str]]:
        """`headers` as the server gets them: Host 127.0.0.1:<PORT or 8080>, no Origin,
        X-Forwarded-Host `host` and X-Forwarded-Proto `proto` (replacing any)."""
        kept = [(k, v) for k, v in headers if k.lower() not in PRESENTED]
        return [
            ("host", self.presented_host),
            *kept,
            ("x-forwarded-host", host),
            ("x-forwarded-proto", proto),
        ]


class _NeverRaised(Exception):
    """Stands for FetchDue and KeysUnavailable when the gate is not in oauth mode."""


PRESENTED = frozenset({"host", "origin", "x-forwarded-host", "x-forwarded-proto"})
"""The headers `loopback_headers` sets or removes."""


def _oauth_module() -> Any:
    """`mcp_deploy_oauth`, beside this module (imported as a top-level module in artifacts,
    as `targets.shim.mcp_deploy_oauth` from the repository); it imports `mcp_deploy_jwks`."""
    package = __name__.rpartition(".")[0]
    try:
        return importlib.import_module(
            f"{package}.mcp_deploy_oauth" if package else "mcp_deploy_oauth"
        )
    except ImportError as error:
        raise RuntimeError(
            "auth.mode is 'oauth' but the artifact lacks what its token checks need "
            f"({error.name or error}): rebuild it with this mcp-deploy"
        ) from None
