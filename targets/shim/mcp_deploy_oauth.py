"""The OAuth 2.1 resource server part of the gate (auth.mode = "oauth"), inside an artifact.

Imported by `mcp_deploy_gate` only in oauth mode: it needs PyJWT with `cryptography`, which
the artifact carries in that mode only; the issuer's keys are `mcp_deploy_jwks`'s.

- Protected Resource Metadata (RFC 9728) for the deployment's base URL.
- Access tokens: JWS compact JWTs whose `alg` is on the allow-list (never `none` or HS*),
  signed by a key of the issuer's JWKS (by `kid`; without one, the only usable key), with
  `iss` = issuer, the expected audience in `aud` (or `client_id` = it), `exp` > now and
  `nbf` <= now (no leeway), then every required scope.

`judge` raises `FetchDue` when the keys must be fetched first (the gate runs `refresh` and
asks again) and `KeysUnavailable` when they cannot be (the gate answers 503). Refusal hints
never contain the token.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import time
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import jwt


def _sibling(name: str) -> ModuleType:
    """The shim `name` beside this one (top-level in artifacts, in targets.shim here)."""
    package = __name__.rpartition(".")[0]
    return importlib.import_module(f"{package}.{name}" if package else name)


if TYPE_CHECKING:
    import mcp_deploy_jwks as keys
else:
    keys = _sibling("mcp_deploy_jwks")

FetchDue = keys.FetchDue
KeysUnavailable = keys.KeysUnavailable
InvalidToken = keys.InvalidToken
WELL_KNOWN = "/.well-known/oauth-protected-resource"
MAX_TOKEN = 16 * 1024
MAX_VERIFIED = 1024  # tokens remembered as verified (see OAuth.verify)
Response = tuple[int, dict[str, str], bytes]


class InsufficientScope(Exception):
    """403 insufficient_scope: the token lacks `missing`."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(" ".join(missing))
        self.missing = missing


class OAuth:
    """Judges requests of an oauth-mode deployment (config: the runtime config's `auth`)."""

    def __init__(
        self, auth: dict[str, Any], mcp_path: str, fetch: keys.Fetch = keys.fetch_json
    ) -> None:
        self.issuer = str(auth["issuer"])
        audience = auth.get("audience")
        self.audience = str(audience) if audience else None
        self.scopes = [str(scope) for scope in auth.get("scopes") or []]
        self.algorithms = frozenset(
            alg
            for alg in auth.get("algorithms") or ["RS256", "ES256"]
            if alg in keys.KEY_TYPES  # never none, never HS*
        )
        self.audience_claim = str(auth.get("audience_claim") or "aud")
        self.scope_claim = str(auth.get("scope_claim") or "scope")
        self.mcp_path = mcp_path
        self.metadata_paths = frozenset({WELL_KNOWN, WELL_KNOWN + mcp_path})
        self.jwks = keys.Jwks(self.issuer, auth.get("jwks_uri") or None, fetch)
        self._verified: dict[tuple[str, str], tuple[int, float, float, dict[str, Any]]] = {}
        self._hint = json.dumps(
            {
                "error": "unauthorized",
                "hint": f"send Authorization: Bearer <an access token from {self.issuer}>",
            }
        ).encode()
        self._scope_param = f', scope="{" ".join(self.scopes)}"' if self.scopes else ""

    # --- URLs ---

    def resource(self, base: str) -> str:
        """The resource (RFC 8707) this deployment is: an absolute audience, else its URL."""
        if self.audience is not None and self.audience.startswith(("http://", "https://")):
            return self.audience
        return base + self.mcp_path

    def expected_audience(self, base: str) -> str:
        return self.audience if self.audience is not None else base + self.mcp_path

    def metadata_url(self, base: str) -> str:
        return base + WELL_KNOWN + self.mcp_path

    # --- answers ---

    def metadata(self, method: str, base: str) -> Response:
        """The answer on a Protected Resource Metadata path."""
        cors = {"access-control-allow-origin": "*"}
        if method == "OPTIONS":
            return (
                204,
                {
                    **cors,
                    "access-control-allow-methods": "GET, HEAD, OPTIONS",
                    "access-control-allow-headers": "*",
                },
                b"",
            )
        if method not in ("GET", "HEAD"):
            return (
                405,
                {"allow": "GET, HEAD, OPTIONS", "content-type": "application/json"},
                (json.dumps({"error": "method not allowed"}).encode()),
            )
        document: dict[str, Any] = {
            "resource": self.resource(base),
            "authorization_servers": [self.issuer],
            "bearer_methods_supported": ["header"],
        }
        if self.scopes:
            document["scopes_supported"] = self.scopes
        headers = {
            **cors,
            "content-type": "application/json",
            "cache-control": "public, max-age=300",
        }
        return 200, headers, b"" if method == "HEAD" else json.dumps(document).encode()

    def judge(self, authorization: Sequence[str], base: str) -> Response | None:
        """None to let the request through, else the refusal. Raises FetchDue (fetch the
        keys, then ask again) or KeysUnavailable (503); `authorization` holds one value at
        most (the gate checked)."""
        value = authorization[0] if authorization else ""
        scheme, _, token = value.partition(" ")
        token = token.strip()
        metadata = f'resource_metadata="{self.metadata_url(base)}"'
        if scheme.lower() != "bearer" or not token:
            challenge = f"Bearer {metadata}{self._scope_param}"
            return 401, _json_headers(challenge), self._hint
        try:
            self.verify(token, self.expected_audience(base))
        except InvalidToken as error:
            challenge = f'Bearer error="invalid_token", {metadata}{self._scope_param}'
            body = {"error": "invalid_token", "hint": str(error)}
            return 401, _json_headers(challenge), json.dumps(body).encode()
        except InsufficientScope as error:
            challenge = (
                f'Bearer error="insufficient_scope", scope="{" ".join(self.scopes)}", {metadata}'
            )
            body = {"error": "insufficient_scope", "hint": f"the token lacks: {error}"}
            return 403, _json_headers(challenge), json.dumps(body).encode()
        return None

    # --- tokens ---

    def verify(self, token: str, audience: str) -> dict[str, Any]:
        """The token's claims when it is valid for `audience` and carries every required
        scope. Raises InvalidToken, InsufficientScope, KeysUnavailable or FetchDue.

        A token found valid is remembered (at most MAX_VERIFIED of them) with the version of
        the keys that verified it: while those keys are the cached ones and still fresh, the
        same token for the same audience is valid again while now is within its nbf/exp —
        the verdict a new verification would reach, without its cost (MCP clients send one
        access token with every request until it expires)."""
        remembered = self._verified.get((token, audience))
        if remembered is not None:
            version, not_before, expires, claims = remembered
            if version == self.jwks.fresh_version() and not_before <= time.time() < expires:
                return claims
            self._verified.pop((token, audience), None)
        if len(token) > MAX_TOKEN:
            raise InvalidToken("the token is too long")
        header = _header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            allowed = ", ".join(sorted(self.algorithms))
            raise InvalidToken(f"the token's algorithm is not allowed (allowed: {allowed})")
        if header.get("b64", True) is not True:
            raise InvalidToken("the token is not a signed JWT")
        kid = header.get("kid")
        key = self.jwks.key(kid if isinstance(kid, str) else None, alg)
        version = self.jwks.version
        by_aud = self.audience_claim == "aud"
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audience if by_aud else None,
                issuer=self.issuer,
                leeway=0,
                options={
                    "require": ["exp", "iss"],
                    "verify_aud": by_aud,
                    "verify_iat": False,
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(_reason(error, self.issuer, audience)) from None
        if not by_aud and claims.get(self.audience_claim) != audience:
            raise InvalidToken(f"the token's {self.audience_claim} is not {audience}")
        granted = _scopes(claims.get(self.scope_claim), self.scope_claim)
        missing = [scope for scope in self.scopes if scope not in granted]
        if missing:
            raise InsufficientScope(missing)
        if len(self._verified) >= MAX_VERIFIED:
            self._verified.clear()
        not_before = float(claims.get("nbf", float("-inf")))
        self._verified[(token, audience)] = (version, not_before, float(claims["exp"]), claims)
        return claims

    def refresh(self, generation: int) -> None:
        self.jwks.refresh(generation)


def _header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, to pick the key (PyJWT parses the whole token again,
    strictly, when it verifies it with that key)."""
    head, _, rest = token.partition(".")
    if rest.count(".") != 1:
        raise InvalidToken("the token is not a signed JWT")
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise InvalidToken("the token is not a signed JWT") from None
    if not isinstance(header, dict):
        raise InvalidToken("the token is not a signed JWT")
    return header


def _json_headers(challenge: str) -> dict[str, str]:
    return {"content-type": "application/json", "www-authenticate": challenge}


def _scopes(value: Any, claim: str) -> set[str]:
    if isinstance(value, str):
        return set(value.split())
    if claim == "scp" and isinstance(value, list):
        return {item for item in value if isinstance(item, str)}
    return set()


def _reason(error: jwt.PyJWTError, issuer: str, audience: str) -> str:
    """A short hint for a refused token (never the token itself)."""
    if isinstance(error, jwt.ExpiredSignatureError):
        return "the token has expired"
    if isinstance(error, jwt.ImmatureSignatureError):
        return "the token is not valid yet (nbf)"
    if isinstance(error, jwt.InvalidSignatureError):
        return "the token's signature is invalid"
    if isinstance(error, jwt.InvalidIssuerError):
        return f"the token's issuer is not {issuer}"
    if isinstance(error, jwt.InvalidAudienceError):
        return f"the token's audience is not {audience}"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"the token has no {error.claim} claim"
    if isinstance(error, jwt.InvalidAlgorithmError):
        return "the token's algorithm does not match the issuer's key"
    return "the token is not a valid signed JWT"
