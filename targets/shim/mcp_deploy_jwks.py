"""The issuer's signing keys for the OAuth gate (auth.mode = "oauth"), inside an artifact.

Imported by `mcp_deploy_oauth` (oauth mode only: it needs PyJWT with `cryptography`).

The JWKS comes from `jwks_uri`, else from the issuer's OpenID configuration
(`<issuer>/.well-known/openid-configuration`, falling back to RFC 8414's
`/.well-known/oauth-authorization-server<issuer path>`), discovered on first need, whose
`issuer` must be the configured one. Keys are kept 10 minutes; a `kid` not among them triggers
one refetch unless the last attempt was less than 5 seconds ago (key rotation, without letting
callers make the gate fetch at will); a failed attempt is not retried for 5 seconds (the gate
answers 503 meanwhile). Fetches use urllib with a 5 s timeout and read at most 1 MiB.

`Jwks.key` never fetches: it raises `FetchDue` when the keys must be fetched first; the caller
runs `refresh` (blocking: in a thread under an event loop) and asks again.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import jwt

KEYS_TTL = 600.0
MIN_REFETCH = 5.0
FETCH_TIMEOUT = 5.0
MAX_DOCUMENT = 1024 * 1024
# The key type (and curve) each signature algorithm verifies with: the allow-list's universe
# (never none, never HS*).
KEY_TYPES: dict[str, tuple[str, str | None]] = {
    **{f"{family}{bits}": ("RSA", None) for family in ("RS", "PS") for bits in (256, 384, 512)},
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "ES256K": ("EC", "secp256k1"),
    "EdDSA": ("OKP", "Ed25519"),
    "Ed25519": ("OKP", "Ed25519"),
}

Fetch = Callable[[str], Any]


class InvalidToken(Exception):
    """401 invalid_token; the message is the hint."""


class KeysUnavailable(Exception):
    """503: the issuer's keys cannot be fetched."""


class FetchDue(Exception):
    """The keys must be fetched (`Jwks.refresh(generation)`) before the token can be judged."""

    def __init__(self, generation: int) -> None:
        super().__init__("the issuer's keys must be fetched first")
        self.generation = generation


def log(message: str) -> None:
    print(f"mcp-deploy gate: {message}", file=sys.stderr, flush=True)


def fetch_json(url: str) -> Any:
    """The JSON document at `url` (GET, 5 s timeout, at most 1 MiB). Raises OSError/ValueError."""
    request = urllib.request.Request(
        url, headers={"accept": "application/json", "user-agent": "mcp-deploy-gate"}
    )
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as answer:
            data = answer.read(MAX_DOCUMENT + 1)
    except (OSError, http.client.HTTPException) as error:
        raise OSError(f"GET {url}: {error}") from None
    if len(data) > MAX_DOCUMENT:
        raise ValueError(f"GET {url}: the document is larger than 1 MiB")
    try:
        return json.loads(data)
    except ValueError:
        raise ValueError(f"GET {url}: not JSON") from None


def discovery_urls(issuer: str) -> list[str]:
    """Where the issuer's metadata may be: OpenID Connect discovery, then RFC 8414."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return [
        issuer.rstrip("/") + "/.well-known/openid-configuration",
        f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{path}",
    ]


class Jwks:
    """The issuer's signing keys, fetched on demand and cached (see the module docstring)."""

    def __init__(
        self,
        issuer: str,
        jwks_uri: str | None,
        fetch: Fetch = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: list[dict[str, Any]] = []
        self._built: dict[tuple[str | None, str], jwt.PyJWK | None] = {}
        self._fetched_at: float | None = None  # the last successful fetch
        self._attempted_at: float | None = None  # the last attempt, successful or not
        self._failed = False
        self.generation = 0  # counts attempts
        self.version = 0  # counts successful fetches: which keys a verdict was reached with

    def key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key verifying `alg` signatures for `kid` (None: the only usable key).
        Raises FetchDue, KeysUnavailable or InvalidToken."""
        now = self._clock()
        recent = self._attempted_at is not None and now - self._attempted_at < MIN_REFETCH
        fresh = self._fetched_at is not None and now - self._fetched_at < KEYS_TTL
        if not fresh:
            if not recent:
                raise FetchDue(self.generation)
            raise KeysUnavailable()
        found = self._find(kid, alg)
        if found is not None:
            return found
        if not recent:
            raise FetchDue(self.generation)
        if self._failed:
            raise KeysUnavailable()
        if kid is None:
            raise InvalidToken("the token names no key (kid) and the issuer has not exactly one")
        raise InvalidToken("no key of the issuer matches the token's kid")

    def fresh_version(self) -> int | None:
        """The version of the cached keys while they are fresh (< 10 minutes old), else None."""
        fetched = self._fetched_at
        if fetched is None or self._clock() - fetched >= KEYS_TTL:
            return None
        return self.version

    def _find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        cache_key = (kid, alg)
        if cache_key in self._built:
            return self._built[cache_key]
        kty, crv = KEY_TYPES.get(alg, ("", None))
        usable = []
        for jwk in self._keys:
            if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
                continue
            if jwk.get("use", "sig") != "sig" or jwk.get("alg", alg) != alg:
                continue
            if kid is not None and jwk.get("kid") != kid:
                continue
            try:
                usable.append(jwt.PyJWK(jwk, algorithm=alg))
            except jwt.PyJWTError:
                continue
        found = usable[0] if len(usable) == 1 else None
        if len(self._built) < 64:  # bounded: kids come from callers
            self._built[cache_key] = found
        return found

    def refresh(self, generation: int) -> None:
        """Fetch the keys, unless another attempt began after `generation` was read.
        Failures are logged and remembered (KeysUnavailable for 5 s), never raised."""
        with self._lock:
            if self.generation != generation:
                return
            try:
                keys = self._download()
            except (OSError, ValueError, KeysUnavailable) as error:
                log(f"cannot fetch the keys of {self.issuer}: {error}")
                self._failed = True
            else:
                self._keys, self._built = keys, {}
                self._fetched_at = self._clock()
                self._failed = False
                self.version += 1
            self._attempted_at = self._clock()
            self.generation += 1

    def _download(self) -> list[dict[str, Any]]:
        if self.jwks_uri is None:
            self.jwks_uri = self._discover()
        document = self._fetch(self.jwks_uri)
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise ValueError(f"{self.jwks_uri} is not a JWK set")
        return [key for key in keys if isinstance(key, dict)]

    def _discover(self) -> str:
        problems = []
        for url in discovery_urls(self.issuer):
            try:
                document = self._fetch(url)
            except (OSError, ValueError) as error:
                problems.append(str(error))
                continue
            if not isinstance(document, dict):
                problems.append(f"{url}: not a JSON object")
                continue
            if document.get("issuer") != self.issuer:
                raise KeysUnavailable(
                    f"{url} names issuer {document.get('issuer')!r}, not {self.issuer!r}"
                )
            uri = document.get("jwks_uri")
            if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
                raise KeysUnavailable(f"{url} has no jwks_uri")
            return uri
        raise KeysUnavailable("no issuer metadata: " + "; ".join(problems))
