"""The gate every Python shim shares, in oauth mode and for Origin in every mode, against
tokens minted here (EC P-256 and RSA keys made with `cryptography`, signed with PyJWT) and a
JWKS served from a loopback `http.server` thread.

- Protected Resource Metadata at the root and path-suffixed well-known URLs (GET, HEAD,
  OPTIONS, 405), its resource from MCP_DEPLOY_PUBLIC_URL or the platform's base URL, or an
  absolute audience.
- 401 with the challenge without a token; 401 invalid_token for every way a token is wrong
  (garbage, alg none, HS256 with the public key, an algorithm off the list, a flipped
  signature byte, an unknown key, another issuer or audience, expired, not yet valid, no exp);
  403 insufficient_scope (scope string, scp array, client_id audiences); 400 for repeats.
- The JWKS: fetched once and cached, an unknown kid refetched at most once per 5 s, rotation,
  the 10-minute expiry, 503 while the keys cannot be fetched (and no refetch storm), discovery
  through OpenID configuration and RFC 8414 metadata, an issuer mismatch refused.
- Origin: the deployment's own and listed ones pass, others (and `null`) get 403 in every mode;
  health and metadata paths are not checked.
- Both shims: Cloud Run's ASGI middleware and the Lambda handler (run in a subprocess from a
  task root of the shims) present let-through requests as loopback ones; the gate imports
  without PyJWT unless the mode is oauth.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conftest import REPO

SHIM = REPO / "targets" / "shim"
PUBLIC = "http://127.0.0.1:8123"
RESOURCE = f"{PUBLIC}/mcp"
METADATA_URL = f"{PUBLIC}/.well-known/oauth-protected-resource/mcp"
SCOPES = ["mcp:tools", "mcp:read"]
SHIM_NAMES = ("mcp_deploy_gate", "mcp_deploy_oauth", "mcp_deploy_jwks", "mcp_deploy_serve")


# --- an issuer on loopback ---


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """Signing keys, the JWKS and metadata documents served on loopback, and the count of
    requests per path."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.hits: dict[str, int] = {}
        self.keys: dict[str, Any] = {}
        self.failing = False
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.hits[self.path] = issuer.hits.get(self.path, 0) + 1
                document = issuer.documents.get(self.path)
                if issuer.failing or document is None:
                    self.send_response(503 if issuer.failing else 404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.jwks_uri = f"{self.url}/jwks"
        serve = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        serve.start()
        self.add_key("ec1", ec.generate_private_key(ec.SECP256R1()))
        self.add_key("rsa1", rsa.generate_private_key(public_exponent=65537, key_size=2048))
        self.documents["/.well-known/openid-configuration"] = {
            "issuer": self.url,
            "jwks_uri": self.jwks_uri,
        }

    def add_key(self, kid: str, key: Any) -> None:
        self.keys[kid] = key
        self.publish()

    def publish(self, kids: list[str] | None = None) -> None:
        jwks = []
        for kid in kids if kids is not None else list(self.keys):
            key = self.keys[kid]
            algorithm = jwt.algorithms.ECAlgorithm if kid.startswith("ec") else None
            if algorithm is not None:
                jwk = json.loads(algorithm.to_jwk(key.public_key()))
            else:
                jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            jwks.append({**jwk, "kid": kid, "use": "sig"})
        self.documents["/jwks"] = {"keys": jwks}

    def token(
        self,
        *,
        kid: str | None = "ec1",
        audience: str | list[str] | None = RESOURCE,
        scope: Any = "mcp:tools mcp:read",
        lifetime: int = 300,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.url,
            "exp": now + lifetime,
            "iat": now,
            "sub": "someone",
            "client_id": "client-1",
        }
        if audience is not None:
            payload["aud"] = audience
        if scope is not None:
            payload["scope"] = scope
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        name = kid or "ec1"
        algorithm = "ES256" if name.startswith("ec") else "RS256"
        headers = {"typ": "at+jwt", **({"kid": kid} if kid else {})}
        return jwt.encode(payload, self.keys[name], algorithm=algorithm, headers=headers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    found = Issuer()
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def shims(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """`mcp_deploy_gate` as it is inside artifacts (the oauth shim and the Cloud Run shim
    beside it); MCP_DEPLOY_PUBLIC_URL set to PUBLIC."""
    monkeypatch.syspath_prepend(str(SHIM))
    monkeypatch.syspath_prepend(str(REPO / "targets" / "cloudrun" / "shim"))
    monkeypatch.setenv("MCP_DEPLOY_PUBLIC_URL", PUBLIC)
    monkeypatch.delenv("PORT", raising=False)
    for name in SHIM_NAMES:
        sys.modules.pop(name, None)
    yield importlib.import_module("mcp_deploy_gate")
    for name in SHIM_NAMES:
        sys.modules.pop(name, None)


def oauth_config(idp: Issuer, **auth: Any) -> dict[str, Any]:
    settings = {
        "mode": "oauth",
        "token_env": "MCP_AUTH_TOKEN",
        "issuer": idp.url,
        "audience": None,
        "scopes": SCOPES,
        "algorithms": ["RS256", "ES256"],
        "jwks_uri": idp.jwks_uri,
        "audience_claim": "aud",
        "scope_claim": "scope",
        **auth,
    }
    return {"entry": "app:app", "path": "/mcp", "health_path": "/health", "auth": settings}


def ask(
    gate: Any,
    token: str | None = None,
    *,
    method: str = "POST",
    path: str = "/mcp",
    origin: str | None = None,
    authorization: list[str] | None = None,
    base: str = "https://platform.example",
) -> Any:
    fields: dict[str, list[str]] = {}
    if authorization is not None:
        fields["authorization"] = authorization
    elif token is not None:
        fields["authorization"] = [f"Bearer {token}"]
    if origin is not None:
        fields["origin"] = [origin]
    return gate.check(method, path, fields, base)


def body_of(answer: Any) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(answer.body)
    return found


def refused(answer: Any, hint: str) -> None:
    """`answer` is 401 invalid_token with `hint` in its hint."""
    assert answer is not None and answer.status == 401, answer
    assert answer.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", resource_metadata="{METADATA_URL}", '
        'scope="mcp:tools mcp:read"'
    )
    assert body_of(answer)["error"] == "invalid_token"
    assert hint in body_of(answer)["hint"], body_of(answer)


# --- metadata and challenges ---


def test_metadata_at_the_root_and_the_path_suffixed_well_known_urls(
    shims: ModuleType, issuer: Issuer
) -> None:
    gate = shims.Gate(oauth_config(issuer))
    expected = {
        "resource": RESOURCE,
        "authorization_servers": [issuer.url],
        "bearer_methods_supported": ["header"],
        "scopes_supported": SCOPES,
    }
    for path in (
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ):
        answer = ask(gate, method="GET", path=path, origin="https://evil.example")
        assert answer.status == 200 and body_of(answer) == expected
        assert answer.headers == {
            "content-type": "application/json",
            "access-control-allow-origin": "*",
            "cache-control": "public, max-age=300",
        }
        head = ask(gate, method="HEAD", path=path)
        assert (head.status, head.body) == (200, b"")
        options = ask(gate, method="OPTIONS", path=path)
        assert options.status == 204 and options.headers == {
            "access-control-allow-origin": "*",
            "access-control-allow-methods": "GET, HEAD, OPTIONS",
            "access-control-allow-headers": "*",
        }
        post = ask(gate, method="POST", path=path)
        assert post.status == 405 and post.headers["allow"] == "GET, HEAD, OPTIONS"
    assert issuer.hits == {}  # metadata needs no keys


def test_the_resource_comes_from_the_platform_or_an_absolute_audience(
    shims: ModuleType, issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MCP_DEPLOY_PUBLIC_URL")
    gate = shims.Gate(oauth_config(issuer, scopes=[]))
    answer = ask(gate, method="GET", path="/.well-known/oauth-protected-resource")
    document = body_of(answer)
    assert document["resource"] == "https://platform.example/mcp"
    assert "scopes_supported" not in document  # no scopes required
    challenge = ask(gate).headers["www-authenticate"]
    assert challenge == (
        'Bearer resource_metadata="https://platform.example/.well-known/'
        'oauth-protected-resource/mcp"'
    )
    absolute = shims.Gate(oauth_config(issuer, audience="https://mcp.example.com/api"))
    answer = ask(absolute, method="GET", path="/.well-known/oauth-protected-resource/mcp")
    assert body_of(answer)["resource"] == "https://mcp.example.com/api"
    assert ask(absolute, issuer.token(audience="https://mcp.example.com/api")) is None
    named = shims.Gate(oauth_config(issuer, audience="api://toolbox"))
    answer = ask(named, method="GET", path="/.well-known/oauth-protected-resource")
    assert body_of(answer)["resource"] == "https://platform.example/mcp"
    assert ask(named, issuer.token(audience="api://toolbox")) is None
    refused_answer = ask(named, issuer.token(audience="https://platform.example/mcp"))
    assert refused_answer.status == 401


def test_no_token_gets_the_challenge(shims: ModuleType, issuer: Issuer) -> None:
    gate = shims.Gate(oauth_config(issuer))
    for authorization in ([], ["Basic abc"], ["Bearer "], ["Bearer"]):
        answer = ask(gate, authorization=authorization)
        assert answer.status == 401
        assert answer.headers == {
            "content-type": "application/json",
            "www-authenticate": (
                f'Bearer resource_metadata="{METADATA_URL}", scope="mcp:tools mcp:read"'
            ),
        }
        assert body_of(answer) == {
            "error": "unauthorized",
            "hint": f"send Authorization: Bearer <an access token from {issuer.url}>",
        }
    assert issuer.hits == {}


def test_valid_tokens_pass(shims: ModuleType, issuer: Issuer) -> None:
    gate = shims.Gate(oauth_config(issuer))
    assert ask(gate, issuer.token()) is None
    assert ask(gate, issuer.token(kid="rsa1")) is None
    assert ask(gate, issuer.token(audience=["other", RESOURCE])) is None
    assert ask(gate, issuer.token(scope="mcp:read extra mcp:tools")) is None
    assert ask(gate, authorization=[f"bearer {issuer.token()}"]) is None
    assert ask(gate, path="/health", authorization=["Bearer x", "Bearer y"]) is None
    assert issuer.hits == {"/jwks": 1}  # fetched once, cached


def tamper(
    token: str, *, header: dict[str, Any] | None = None, signature: bytes | None = None
) -> str:
    head, payload, sig = token.split(".")
    if header is not None:
        head = b64url(json.dumps(header).encode())
    if signature is not None:
        sig = b64url(signature)
    return f"{head}.{payload}.{sig}"


def test_every_kind_of_bad_token_is_refused(shims: ModuleType, issuer: Issuer) -> None:
    gate = shims.Gate(oauth_config(issuer))
    good = issuer.token()
    head, payload, sig = good.split(".")
    flipped = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    flipped[5] ^= 0x01
    public_pem = (
        issuer.keys["ec1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    hs_head = b64url(json.dumps({"alg": "HS256", "kid": "ec1", "typ": "at+jwt"}).encode())
    hs_sig = hmac.new(public_pem, f"{hs_head}.{payload}".encode(), hashlib.sha256).digest()
    ps = jwt.encode(
        {"iss": issuer.url, "aud": RESOURCE, "exp": int(time.time()) + 60, "scope": "mcp:tools"},
        issuer.keys["rsa1"],
        algorithm="PS256",
        headers={"kid": "rsa1"},
    )
    cases = {
        "garbage": ("not-a-jwt", "not a signed JWT"),
        "two segments": (f"{head}.{payload}", "not a signed JWT"),
        "alg none": (
            tamper(good, header={"alg": "none", "typ": "at+jwt"}, signature=b""),
            "algorithm",
        ),
        "alg None": (
            tamper(good, header={"alg": "None", "kid": "ec1"}, signature=b""),
            "algorithm",
        ),
        "HS256 with the public key": (f"{hs_head}.{payload}.{b64url(hs_sig)}", "algorithm"),
        "PS256 not on the list": (ps, "algorithm is not allowed"),
        "ES256 claimed by the RSA key": (
            tamper(good, header={"alg": "ES256", "kid": "rsa1"}),
            "no key of the issuer matches",
        ),
        "flipped signature byte": (tamper(good, signature=bytes(flipped)), "signature is invalid"),
        "unknown kid": (
            tamper(good, header={"alg": "ES256", "kid": "zz"}),
            "kid",
        ),
        "other audience": (issuer.token(audience="https://other.example/mcp"), "audience"),
        "no audience": (issuer.token(audience=None), "aud"),
        "other issuer": (issuer.token(iss="https://evil.example"), "issuer"),
        "expired": (issuer.token(lifetime=-1), "expired"),
        "not yet valid": (issuer.token(nbf=int(time.time()) + 600), "not valid yet"),
        "no exp": (issuer.token(exp=None), "exp"),
        "b64 false": (
            tamper(good, header={"alg": "ES256", "kid": "ec1", "b64": False}),
            "signed JWT",
        ),
        "too long": ("a" * 20000, "too long"),
    }
    for name, (token, hint) in cases.items():
        answer = ask(gate, token)
        assert answer is not None, name
        refused(answer, hint)
        assert token not in answer.body.decode(), name


def test_without_a_kid_the_only_usable_key_verifies(shims: ModuleType, issuer: Issuer) -> None:
    gate = shims.Gate(oauth_config(issuer))
    # Two keys, but only one EC key: ES256 without a kid is verified by it.
    assert ask(gate, issuer.token(kid=None)) is None
    issuer.add_key("ec2", ec.generate_private_key(ec.SECP256R1()))
    gate = shims.Gate(oauth_config(issuer))
    refused(ask(gate, issuer.token(kid=None)), "names no key")


def test_a_token_lacking_a_scope_is_403(shims: ModuleType, issuer: Issuer) -> None:
    gate = shims.Gate(oauth_config(issuer))
    for scope in ("mcp:tools", "", None, ["mcp:tools", "mcp:read"]):  # a list is not `scope`
        answer = ask(gate, issuer.token(scope=scope))
        assert answer.status == 403, scope
        assert answer.headers["www-authenticate"] == (
            'Bearer error="insufficient_scope", scope="mcp:tools mcp:read", '
            f'resource_metadata="{METADATA_URL}"'
        )
        missing = "mcp:read" if scope == "mcp:tools" else "mcp:tools mcp:read"
        assert body_of(answer) == {
            "error": "insufficient_scope",
            "hint": f"the token lacks: {missing}",
        }


def test_scp_claims_and_client_id_audiences(shims: ModuleType, issuer: Issuer) -> None:
    scp = shims.Gate(oauth_config(issuer, scope_claim="scp"))
    assert ask(scp, issuer.token(scope=None, scp=["mcp:tools", "mcp:read"])) is None
    assert ask(scp, issuer.token(scope=None, scp="mcp:read mcp:tools")) is None
    assert ask(scp, issuer.token(scope=None, scp=["mcp:tools"])).status == 403
    cognito = shims.Gate(oauth_config(issuer, audience="client-1", audience_claim="client_id"))
    assert ask(cognito, issuer.token(audience=None)) is None
    refused(ask(cognito, issuer.token(audience=None, client_id="client-2")), "client_id")


def test_repeated_authorization_is_400(shims: ModuleType, issuer: Issuer) -> None:
    gate = shims.Gate(oauth_config(issuer))
    token = issuer.token()
    for values in ([f"Bearer {token}", f"Bearer {token}"], [f"Bearer {token},Bearer x"]):
        answer = ask(gate, authorization=values)
        assert (answer.status, answer.headers, answer.body) == (400, *shims.REFUSALS[400])


# --- the keys ---


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def clocked(shims: ModuleType, issuer: Issuer, **auth: Any) -> tuple[Any, Clock]:
    gate = shims.Gate(oauth_config(issuer, **auth))
    clock = Clock()
    gate.oauth.jwks._clock = clock
    return gate, clock


def test_rotation_refetches_at_most_once_per_five_seconds(
    shims: ModuleType, issuer: Issuer
) -> None:
    gate, clock = clocked(shims, issuer)
    assert ask(gate, issuer.token()) is None and issuer.hits["/jwks"] == 1
    issuer.add_key("ec2", ec.generate_private_key(ec.SECP256R1()))
    issuer.publish(["ec2"])  # rotated: the old key is gone
    clock.now += 1
    refused(ask(gate, issuer.token(kid="ec2")), "kid")  # too soon after the last fetch
    assert issuer.hits["/jwks"] == 1
    clock.now += 5
    assert ask(gate, issuer.token(kid="ec2")) is None
    assert issuer.hits["/jwks"] == 2
    refused(ask(gate, issuer.token(kid="ec1")), "kid")  # gone, and no refetch storm
    for _ in range(20):
        ask(gate, tamper(issuer.token(), header={"alg": "ES256", "kid": "random"}))
    assert issuer.hits["/jwks"] == 2


def test_keys_expire_after_ten_minutes(shims: ModuleType, issuer: Issuer) -> None:
    gate, clock = clocked(shims, issuer)
    assert ask(gate, issuer.token()) is None
    clock.now += 599
    assert ask(gate, issuer.token()) is None and issuer.hits["/jwks"] == 1
    clock.now += 2
    assert ask(gate, issuer.token()) is None and issuer.hits["/jwks"] == 2


def test_unreachable_keys_are_503_without_a_fetch_per_request(
    shims: ModuleType, issuer: Issuer, capsys: pytest.CaptureFixture[str]
) -> None:
    gate, clock = clocked(shims, issuer)
    issuer.failing = True
    token = issuer.token()
    for _ in range(5):
        answer = ask(gate, token)
        assert answer.status == 503 and body_of(answer) == {
            "error": "temporarily_unavailable",
            "hint": "the issuer's keys cannot be fetched",
        }
    assert issuer.hits["/jwks"] == 1
    assert "cannot fetch the keys of" in capsys.readouterr().err
    issuer.failing = False
    clock.now += 5
    assert ask(gate, token) is None and issuer.hits["/jwks"] == 2


def test_keys_of_an_unreachable_issuer(shims: ModuleType, issuer: Issuer) -> None:
    from tests.support.net import free_port

    gate = shims.Gate(oauth_config(issuer, jwks_uri=f"http://127.0.0.1:{free_port()}/jwks"))
    assert ask(gate, issuer.token()).status == 503


def test_discovery_openid_then_rfc8414_and_the_issuer_must_match(
    shims: ModuleType, issuer: Issuer
) -> None:
    gate = shims.Gate(oauth_config(issuer, jwks_uri=None))
    assert ask(gate, issuer.token()) is None
    assert issuer.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}
    # An issuer with a path and only RFC 8414 metadata.
    tenant = f"{issuer.url}/tenant"
    issuer.documents["/.well-known/oauth-authorization-server/tenant"] = {
        "issuer": tenant,
        "jwks_uri": issuer.jwks_uri,
    }
    gate = shims.Gate(oauth_config(issuer, jwks_uri=None, issuer=tenant))
    assert ask(gate, issuer.token(iss=tenant)) is None
    assert issuer.hits["/tenant/.well-known/openid-configuration"] == 1
    # Metadata naming another issuer: the keys are not taken from it.
    issuer.documents["/.well-known/openid-configuration"]["issuer"] = "https://evil.example"
    gate = shims.Gate(oauth_config(issuer, jwks_uri=None))
    assert ask(gate, issuer.token()).status == 503


# --- Origin, every mode ---


@pytest.mark.parametrize("mode", ["oauth", "bearer", "none", "iam"])
def test_origin_is_checked_in_every_mode(
    shims: ModuleType, issuer: Issuer, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_AUTH_TOKEN", "bearer-token")
    config = oauth_config(issuer, mode=mode, allowed_origins=["https://App.example.com/"])
    gate = shims.Gate(config)
    token = issuer.token() if mode == "oauth" else "bearer-token"
    for origin in (PUBLIC, PUBLIC.upper().replace("HTTP", "http"), "https://app.example.com"):
        assert ask(gate, token, origin=origin) is None, origin
    for origin in ("https://evil.example", "null", f"{PUBLIC}0", "http://localhost:8123", ""):
        answer = ask(gate, token, origin=origin)
        assert (answer.status, answer.headers, answer.body) == (403, *shims.REFUSALS[403])
        assert answer.body == (
            b'{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, '
            b'"message": "Forbidden: the Origin is not allowed"}}'
        )
    assert ask(gate, path="/health", origin="https://evil.example") is None
    # Without MCP_DEPLOY_PUBLIC_URL the platform's base URL is the deployment's own origin.
    monkeypatch.delenv("MCP_DEPLOY_PUBLIC_URL")
    gate = shims.Gate(config)
    if mode == "oauth":
        token = issuer.token(audience="https://platform.example/mcp")
    assert ask(gate, token, origin="https://platform.example") is None
    assert ask(gate, token, origin=PUBLIC).status == 403


def test_a_foreign_origin_is_refused_before_the_token_is_judged(
    shims: ModuleType, issuer: Issuer
) -> None:
    gate = shims.Gate(oauth_config(issuer))
    assert ask(gate, None, origin="https://evil.example").status == 403
    assert issuer.hits == {}


# --- the shims ---


def test_cloud_run_middleware_presents_a_loopback_request(
    shims: ModuleType, issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "9090")
    monkeypatch.delenv("MCP_DEPLOY_PUBLIC_URL")
    serve = importlib.import_module("mcp_deploy_serve")
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    gated = serve.GatedApp(app, shims.Gate(oauth_config(issuer)))
    resource = "https://svc-abc.a.run.app/mcp"

    def call(*headers: tuple[str, str], path: str = "/mcp") -> tuple[int, dict[str, str]]:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        raw = [(b"host", b"svc-abc.a.run.app"), (b"x-forwarded-proto", b"https")]
        raw += [(k.encode(), v.encode()) for k, v in headers]
        scope = {"type": "http", "method": "POST", "path": path, "headers": raw}
        asyncio.run(gated(scope, None, send))  # the keys are fetched in a thread
        fields = {k.decode(): v.decode() for k, v in sent[0].get("headers", [])}
        return int(sent[0]["status"]), fields

    status, fields = call()
    assert status == 401
    assert (
        'resource_metadata="https://svc-abc.a.run.app/.well-known/' in (fields["www-authenticate"])
    )
    token = issuer.token(audience=resource)
    assert call(("origin", "https://evil.example"), ("authorization", f"Bearer {token}"))[0] == 403
    status, _ = call(("origin", "https://svc-abc.a.run.app"), ("authorization", f"Bearer {token}"))
    assert status == 200 and issuer.hits == {"/jwks": 1}
    headers = [(k.decode(), v.decode()) for k, v in seen[-1]["headers"]]
    assert headers[0] == ("host", "127.0.0.1:9090")
    assert ("x-forwarded-host", "svc-abc.a.run.app") in headers
    assert ("x-forwarded-proto", "https") in headers
    assert ("authorization", f"Bearer {token}") in headers  # forwarded unchanged
    assert not [name for name, _ in headers if name == "origin"]
    assert [name for name, _ in headers].count("host") == 1


LAMBDA_APP = """
import json


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    seen = {"headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "scheme": scope["scheme"], "server": list(scope["server"])}
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(seen).encode()})
"""

LAMBDA_DRIVER = """
import json, sys
import mcp_deploy_lambda
answers = [mcp_deploy_lambda.handler(event, None) for event in json.load(sys.stdin)]
print(json.dumps(answers))
"""


def test_lambda_handler_gates_and_presents_a_loopback_request(
    issuer: Issuer, tmp_path: Path
) -> None:
    """The handler in a task root of its own (shims, runtime config, an app) in a fresh
    interpreter: the Function URL domain is the base URL unless MCP_DEPLOY_PUBLIC_URL is set."""
    from targets.aws_lambda.events import function_url_event

    for shim in ("mcp_deploy_gate.py", "mcp_deploy_oauth.py", "mcp_deploy_jwks.py"):
        shutil.copy(SHIM / shim, tmp_path / shim)
    shutil.copy(REPO / "targets/aws_lambda/shim/mcp_deploy_lambda.py", tmp_path)
    (tmp_path / "app.py").write_text(textwrap.dedent(LAMBDA_APP))
    (tmp_path / "mcp_deploy_runtime.json").write_text(json.dumps(oauth_config(issuer)))
    domain = "abc.lambda-url.eu-west-1.on.aws"
    token = issuer.token(audience=f"https://{domain}/mcp")
    bearer = {"authorization": f"Bearer {token}"}
    events = [
        function_url_event("POST", "/mcp", domain=domain),
        function_url_event("GET", "/.well-known/oauth-protected-resource/mcp", domain=domain),
        function_url_event(
            "POST", "/mcp", headers={**bearer, "origin": "https://x.example"}, domain=domain
        ),
        function_url_event(
            "POST", "/mcp", headers={**bearer, "origin": f"https://{domain}"}, domain=domain
        ),
        function_url_event("GET", "/mcp", headers=bearer, domain=domain),
        function_url_event(
            "POST", "/mcp", headers={"authorization": f"Bearer {token}, Bearer x"}, domain=domain
        ),
    ]

    def run(env: dict[str, str]) -> list[dict[str, Any]]:
        done = subprocess.run(
            [sys.executable, "-c", LAMBDA_DRIVER],
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path), **env},
            input=json.dumps(events),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        answers: list[dict[str, Any]] = json.loads(done.stdout)
        return answers

    challenge, metadata, foreign, passed, stream, repeated = run({})
    assert challenge["statusCode"] == 401
    assert challenge["headers"]["www-authenticate"] == (
        f'Bearer resource_metadata="https://{domain}/.well-known/oauth-protected-resource/mcp", '
        'scope="mcp:tools mcp:read"'
    )
    assert json.loads(metadata["body"])["resource"] == f"https://{domain}/mcp"
    assert foreign["statusCode"] == 403
    assert passed["statusCode"] == 200, passed
    seen = json.loads(passed["body"])
    headers = dict(seen["headers"])
    assert headers["host"] == "127.0.0.1:8080" and "origin" not in headers
    assert headers["x-forwarded-host"] == domain and headers["x-forwarded-proto"] == "https"
    assert headers["authorization"] == f"Bearer {token}"
    assert seen["server"] == ["127.0.0.1", 8080] and seen["scheme"] == "https"
    assert stream["statusCode"] == 405  # no SSE stream on Lambda, after the gate
    assert repeated["statusCode"] == 400
    # Behind the local front door: the loopback URL the client used is the base URL.
    local = run({"MCP_DEPLOY_PUBLIC_URL": PUBLIC})
    assert local[0]["headers"]["www-authenticate"].startswith(
        f'Bearer resource_metadata="{METADATA_URL}"'
    )
    assert local[3]["statusCode"] == 403  # the Function URL's origin is not PUBLIC's
    assert local[4]["statusCode"] == 401  # the token is for the Function URL, not PUBLIC


def test_the_gate_imports_without_pyjwt_unless_the_mode_is_oauth(tmp_path: Path) -> None:
    script = f"""
import sys
sys.modules["jwt"] = None  # as in an artifact without PyJWT
sys.path.insert(0, {str(SHIM)!r})
import os
os.environ["MCP_AUTH_TOKEN"] = "t"
import mcp_deploy_gate as gate
for mode in ("bearer", "iam", "none"):
    gate.Gate({{"path": "/mcp", "auth": {{"mode": mode, "token_env": "MCP_AUTH_TOKEN"}}}})
try:
    gate.Gate({{"path": "/mcp", "auth": {{"mode": "oauth", "issuer": "https://i"}}}})
except RuntimeError as error:
    print(error)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "auth.mode is 'oauth' but the artifact lacks what its token checks need" in done.stdout


# --- what an artifact carries ---

PACKAGED_SPEC = """\
[server]
name = "demo"
python = "3.11"
entry = "demo.app:app"

[secrets.MCP_AUTH_TOKEN]
"""


@pytest.mark.parametrize("mode", ["bearer", "oauth"])
def test_only_oauth_artifacts_carry_the_oauth_shim_and_pyjwt(mode: str, tmp_path: Path) -> None:
    from orchestrator.build.app import AppPart, requirements_origin, shim_requirements
    from orchestrator.build.context import BuildContext, InputsHash, default_store
    from orchestrator.spec.loader import load_spec

    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "__init__.py").write_text("")
    (tmp_path / "demo" / "app.py").write_text("app = None\n")
    auth = (
        '\n[auth]\nmode = "oauth"\nissuer = "https://idp.example.com"\n' if mode == "oauth" else ""
    )
    (tmp_path / "mcp-deploy.toml").write_text(PACKAGED_SPEC + auth)
    loaded = load_spec(tmp_path / "mcp-deploy.toml")
    context = BuildContext(loaded=loaded, store=default_store(loaded))
    shims = [path.name for path in AppPart(context, [], InputsHash("test")).shims]
    if mode == "oauth":
        assert shims == ["mcp_deploy_gate.py", "mcp_deploy_oauth.py", "mcp_deploy_jwks.py"]
        assert shim_requirements(context) == ("pyjwt[crypto]==2.15.1",)
        assert requirements_origin(context, "requirements.txt") == (
            "requirements.txt and the oauth gate's pyjwt[crypto]==2.15.1"
        )
    else:
        assert shims == ["mcp_deploy_gate.py"]  # and the vendored set is what it always was
        assert shim_requirements(context) == ()
        assert requirements_origin(context, "requirements.txt") == "requirements.txt"
