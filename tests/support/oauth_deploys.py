"""What the oauth-mode integration tests share (tests/integration/test_oauth_*.py): an example's
spec turned to `auth.mode = "oauth"`, its local deployment started as the local engine starts
it, requests to it, and the checks every oauth deployment must pass.

- `SCOPES` (every one required), `MCP_HEADERS` (an MCP POST's), `BEARER_AUTH` (the examples'
  `[auth]` table, which `oauth_spec` replaces), `FOREIGN_ORIGIN` and `FOREIGN_BODY` (the
  answer to it);
- `oauth_spec(spec, issuer)`: a copied example's spec made mode oauth for `issuer`, every scope
  of SCOPES required, keys discovered from the issuer's metadata (optionally `allowed_origins`);
- `idp`: a module-scoped fixture, the OpenID provider on loopback (`tests.support.oidc`);
- `running(spec, target, secrets)`: the spec's local deployment on `target`, started the way
  the local engine starts it (`flow.plan`, then the target's local runtime; no deploy, no
  smoke test) with the example's local secret sources set, yielding its MCP URL;
- `post(url, token, origin)`: an MCP initialize, with a bearer token and an Origin if given;
  `challenge_of(response)`: the parameters of its WWW-Authenticate Bearer challenge;
- the checks, each taking (target, url, idp): `check_no_token` (401, the challenge, both
  Protected Resource Metadata URLs answering the deployment's resource), `check_bad_tokens`
  (another audience, expired, not yet valid, a flipped signature byte, `alg: none` → 401
  invalid_token with its exact hint, the token never echoed), `check_too_few_scopes` (403
  insufficient_scope) and `check_origin` (a foreign Origin → 403 before and after auth, the
  deployment's own → 200 from the server named `server`); `GATE_CHECKS`, the first three by
  name, for a test parametrized over them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from orchestrator.deploy import flow
from orchestrator.environments import Overrides
from orchestrator.local.engine import LocalEngine, runtime_for
from orchestrator.paths import ProjectPaths
from orchestrator.spec.loader import load_spec
from tests.support.mcp_wire import INITIALIZE
from tests.support.oidc import OidcProvider, oidc_provider, tamper_signature, unsigned

SCOPES = ("mcp:tools", "mcp:admin")
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
BEARER_AUTH = '[auth]\nmode = "bearer"\ntoken_secret = "MCP_AUTH_TOKEN"\n'
FOREIGN_ORIGIN = "https://evil.example"
FOREIGN_BODY = (
    '{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, '
    '"message": "Forbidden: the Origin is not allowed"}}'
)


def oauth_spec(spec: Path, issuer: str, allowed_origins: Sequence[str] = ()) -> Path:
    """`spec` (a copied example's, with the examples' bearer `[auth]`) rewritten in place to
    oauth mode with `issuer`, every scope of SCOPES required, and `allowed_origins` if any."""
    text = spec.read_text()
    assert BEARER_AUTH in text, "the example's [auth] changed: update the oauth tests"
    oauth = f'[auth]\nmode = "oauth"\nissuer = "{issuer}"\nscopes = {json.dumps(list(SCOPES))}\n'
    if allowed_origins:
        oauth += f"allowed_origins = {json.dumps(list(allowed_origins))}\n"
    spec.write_text(text.replace(BEARER_AUTH, oauth))
    return spec


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    """The OpenID provider, one a test module (which takes it in with `idp = oauth.idp`)."""
    with oidc_provider() as provider:
        yield provider


@contextmanager
def running(spec: Path, target: str, secrets: Mapping[str, str]) -> Iterator[str]:
    """The spec's local deployment on `target`, started as the local engine starts it, with
    `secrets` (variable -> value: the example's local secret sources) in the environment;
    yields its MCP URL."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in secrets.items():
            patch.setenv(name, value)
        with _started(spec, target) as url:
            yield url


@contextmanager
def _started(spec: Path, target: str) -> Iterator[str]:
    loaded = load_spec(spec)
    request = flow.plan(loaded, "local", target, Overrides(), progress=lambda _line: None).request
    launch = LocalEngine(ProjectPaths(loaded.root)).launch(request, 0)
    runner = runtime_for(target)
    handle = runner.start_background(launch)
    try:
        yield handle.url
    finally:
        runner.stop(handle)


def post(url: str, token: str | None = None, origin: str | None = None) -> httpx2.Response:
    """An MCP initialize POST to `url`, with `token` as bearer and `origin` as Origin if given."""
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if origin is not None:
        headers["origin"] = origin
    return httpx2.post(url, json=INITIALIZE, headers=headers, timeout=60)


def challenge_of(response: httpx2.Response) -> dict[str, str]:
    """The WWW-Authenticate Bearer challenge's parameters."""
    value = response.headers["www-authenticate"]
    assert value.startswith("Bearer "), value
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


def check_no_token(target: str, url: str, idp: OidcProvider) -> None:
    """No token: 401 with the challenge and a hint naming the issuer; the metadata URL the
    challenge names, and the root one, answer the deployment's resource."""
    base = url.removesuffix("/mcp")
    refused = post(url)
    assert refused.status_code == 401, (target, refused.text)
    challenge = challenge_of(refused)
    assert challenge == {
        "resource_metadata": f"{base}/.well-known/oauth-protected-resource/mcp",
        "scope": "mcp:tools mcp:admin",
    }, target
    assert refused.json() == {
        "error": "unauthorized",
        "hint": f"send Authorization: Bearer <an access token from {idp.issuer}>",
    }, target
    for metadata_url in (
        challenge["resource_metadata"],
        f"{base}/.well-known/oauth-protected-resource",
    ):
        metadata = httpx2.get(metadata_url, timeout=30)
        assert metadata.status_code == 200, (target, metadata_url, metadata.text)
        assert metadata.headers["content-type"] == "application/json"
        assert metadata.headers["access-control-allow-origin"] == "*"
        assert metadata.json() == {
            "resource": url,
            "authorization_servers": [idp.issuer],
            "bearer_methods_supported": ["header"],
            "scopes_supported": list(SCOPES),
        }, (target, metadata_url)


def check_bad_tokens(target: str, url: str, idp: OidcProvider) -> None:
    """Tokens derived from real ones that the gate must refuse: each → 401 invalid_token with
    its exact hint, and the token is not echoed."""
    good = idp.token(audience=url, scopes=SCOPES)
    cases = {
        "another audience": (
            idp.token(audience="http://127.0.0.1:9/mcp", scopes=SCOPES),
            f"the token's audience is not {url}",
        ),
        "expired": (idp.token(audience=url, scopes=SCOPES, expired=True), "the token has expired"),
        "not yet valid": (
            idp.token(audience=url, scopes=SCOPES, not_before_in=600),
            "the token is not valid yet (nbf)",
        ),
        "wrong signature": (tamper_signature(good), "the token's signature is invalid"),
        "alg none": (
            unsigned(good),
            "the token's algorithm is not allowed (allowed: ES256, RS256)",
        ),
    }
    for name, (token, hint) in cases.items():
        refused = post(url, token)
        assert refused.status_code == 401, (target, name, refused.text)
        assert challenge_of(refused)["error"] == "invalid_token", (target, name)
        assert refused.json() == {"error": "invalid_token", "hint": hint}, (target, name)
        assert token not in refused.text


def check_too_few_scopes(target: str, url: str, idp: OidcProvider) -> None:
    """A valid token lacking a scope: 403 insufficient_scope, naming what it lacks."""
    refused = post(url, idp.token(audience=url, scopes=("mcp:tools",)))
    assert refused.status_code == 403, (target, refused.text)
    challenge = challenge_of(refused)
    assert challenge["error"] == "insufficient_scope", target
    assert challenge["scope"] == "mcp:tools mcp:admin", target
    assert refused.json() == {
        "error": "insufficient_scope",
        "hint": "the token lacks: mcp:admin",
    }, target


Check = Callable[[str, str, OidcProvider], None]
# The checks every oauth deployment passes, by name (a test module parametrizes over them).
GATE_CHECKS: dict[str, Check] = {
    "no token": check_no_token,
    "bad tokens": check_bad_tokens,
    "too few scopes": check_too_few_scopes,
}


def check_origin(target: str, url: str, idp: OidcProvider, *, server: str) -> None:
    """A foreign Origin → 403 (with a valid token, and before auth without one); the
    deployment's own → 200 from the server named `server` (its own checks pass too)."""
    token = idp.token(audience=url, scopes=SCOPES)
    foreign = post(url, token, origin=FOREIGN_ORIGIN)
    assert foreign.status_code == 403 and foreign.text == FOREIGN_BODY, (target, foreign.text)
    assert post(url, None, origin=FOREIGN_ORIGIN).status_code == 403, target  # before auth
    own = post(url, token, origin=url.removesuffix("/mcp"))
    assert own.status_code == 200, (target, own.text)  # loopback Host: the server's checks pass
    assert own.json()["result"]["serverInfo"]["name"] == server, target
