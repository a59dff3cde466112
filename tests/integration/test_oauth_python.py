"""The Python runtime's gate in oauth mode, for real, on both local emulations: the example
(examples/toolbox, which keeps the MCP SDK's DNS-rebinding protection at its defaults) built
with `auth.mode = "oauth"` against a real OpenID provider on loopback (`oidc-provider`, see
tests/support/oidc.py), started in the Lambda emulation and in a Cloud Run container.

On each target: no token → 401 with the challenge, whose metadata URL (and the root one)
answers the deployment's resource; a token for another audience, expired, not yet valid, with
a flipped signature byte, or re-encoded with `alg: none` → 401; a valid token lacking a scope
→ 403 insufficient_scope; a valid token → the tools work through the MCP client; a foreign
Origin → 403, the deployment's own → 200; after the provider rotates its key (and 5 s) a
token signed with the new key is accepted and one with the old key refused. And the bearer
example refuses a foreign Origin too (and passes its own).

The deployments are started the way the local engine starts them (`flow.plan`, then the
target's local runtime), not through `deploy`: the smoke test is not part of what is tested.
Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000) and Node 22 (the
OpenID provider).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from orchestrator.deploy import flow
from orchestrator.environments import Overrides
from orchestrator.local.engine import LocalEngine, runtime_for
from orchestrator.paths import ProjectPaths
from orchestrator.spec.loader import load_spec
from tests.integration.test_example_servers import mcp_session
from tests.support.example import example_copy
from tests.support.mcp_wire import INITIALIZE
from tests.support.oidc import OidcProvider, oidc_provider, tamper_signature, unsigned

pytestmark = pytest.mark.integration

TARGETS = ["lambda", "cloudrun"]
TOKEN = "oauth-test-bearer-canary-6d1f20"
API_KEY = "oauth-test-apikey-canary-0b77c4"
SCOPES = ("mcp:tools", "mcp:admin")
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
BEARER_AUTH = '[auth]\nmode = "bearer"\ntoken_secret = "MCP_AUTH_TOKEN"\n'
FOREIGN_BODY = (
    '{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, '
    '"message": "Forbidden: the Origin is not allowed"}}'
)


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    with oidc_provider() as provider:
        yield provider


@pytest.fixture(autouse=True, scope="module")
def _secret_sources() -> Iterator[None]:
    """The example's local secret sources (the bearer secret stays declared in oauth mode)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOOLBOX_LOCAL_TOKEN", TOKEN)
        patch.setenv("TOOLBOX_LOCAL_API_KEY", API_KEY)
        yield


def project(destination: Path, issuer: str | None) -> Path:
    """The example (with the tests' Cloud Run base); `issuer`: in oauth mode with it, every
    scope of SCOPES required, keys discovered from the issuer's metadata."""
    spec = example_copy(destination, image_base=True)
    if issuer is not None:
        text = spec.read_text()
        assert BEARER_AUTH in text, "the example's [auth] changed: update this test"
        oauth = f'[auth]\nmode = "oauth"\nissuer = "{issuer}"\nscopes = {list(SCOPES)!r}\n'
        spec.write_text(text.replace(BEARER_AUTH, oauth.replace("'", '"')))
    return spec


@contextmanager
def running(spec: Path, target: str) -> Iterator[str]:
    """The spec's local deployment on `target`, started as the local engine starts it;
    yields its MCP URL."""
    loaded = load_spec(spec)
    request = flow.plan(loaded, "local", target, Overrides(), progress=lambda _line: None).request
    launch = LocalEngine(ProjectPaths(loaded.root)).launch(request, 0)
    runner = runtime_for(target)
    handle = runner.start_background(launch)
    try:
        yield handle.url
    finally:
        runner.stop(handle)


@pytest.fixture(scope="module", params=TARGETS)
def deployed(
    request: pytest.FixtureRequest, idp: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    target: str = request.param
    spec = project(tmp_path_factory.mktemp(f"oauth-{target}") / "toolbox", idp.issuer)
    with running(spec, target) as url:
        yield target, url


def post(url: str, token: str | None = None, origin: str | None = None) -> httpx2.Response:
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


def test_no_token_gets_the_challenge_and_the_metadata(
    deployed: tuple[str, str], idp: OidcProvider
) -> None:
    _target, url = deployed
    base = url.removesuffix("/mcp")
    refused = post(url)
    assert refused.status_code == 401, refused.text
    challenge = challenge_of(refused)
    assert challenge == {
        "resource_metadata": f"{base}/.well-known/oauth-protected-resource/mcp",
        "scope": "mcp:tools mcp:admin",
    }
    assert refused.json()["error"] == "unauthorized"
    for metadata_url in (
        challenge["resource_metadata"],
        f"{base}/.well-known/oauth-protected-resource",
    ):
        metadata = httpx2.get(metadata_url, timeout=30)
        assert metadata.status_code == 200, metadata.text
        assert metadata.headers["content-type"] == "application/json"
        assert metadata.headers["access-control-allow-origin"] == "*"
        assert metadata.json() == {
            "resource": url,
            "authorization_servers": [idp.issuer],
            "bearer_methods_supported": ["header"],
            "scopes_supported": list(SCOPES),
        }


def test_bad_tokens_are_refused(deployed: tuple[str, str], idp: OidcProvider) -> None:
    _target, url = deployed
    good = idp.token(audience=url, scopes=SCOPES)
    cases = {
        "another audience": (
            idp.token(audience="http://127.0.0.1:9/mcp", scopes=SCOPES),
            "audience",
        ),
        "expired": (idp.token(audience=url, scopes=SCOPES, expired=True), "expired"),
        "not yet valid": (
            idp.token(audience=url, scopes=SCOPES, not_before_in=600),
            "not valid yet",
        ),
        "wrong signature": (tamper_signature(good), "signature"),
        "alg none": (unsigned(good), "algorithm"),
    }
    for name, (token, hint) in cases.items():
        refused = post(url, token)
        assert refused.status_code == 401, (name, refused.text)
        assert challenge_of(refused)["error"] == "invalid_token", name
        assert refused.json()["error"] == "invalid_token" and hint in refused.json()["hint"], name
        assert token not in refused.text


def test_a_token_lacking_a_scope_is_403(deployed: tuple[str, str], idp: OidcProvider) -> None:
    _target, url = deployed
    refused = post(url, idp.token(audience=url, scopes=("mcp:tools",)))
    assert refused.status_code == 403, refused.text
    challenge = challenge_of(refused)
    assert (
        challenge["error"] == "insufficient_scope" and challenge["scope"] == "mcp:tools mcp:admin"
    )
    assert refused.json() == {"error": "insufficient_scope", "hint": "the token lacks: mcp:admin"}


def test_a_valid_token_works_through_an_mcp_client(
    deployed: tuple[str, str], idp: OidcProvider
) -> None:
    _target, url = deployed
    token = idp.token(audience=url, scopes=SCOPES)
    seen = mcp_session(url, [("add", {"a": 2, "b": 40}), ("greet", {"name": "oauth"})], token=token)
    assert seen["server"] == "toolbox"
    assert seen["tools"] == ["add", "greet", "secret_fingerprint", "word_count"]
    assert seen["results"] == [{"result": 42}, {"result": "Hello, oauth!"}]


def test_origin(deployed: tuple[str, str], idp: OidcProvider) -> None:
    _target, url = deployed
    token = idp.token(audience=url, scopes=SCOPES)
    foreign = post(url, token, origin="https://evil.example")
    assert foreign.status_code == 403 and foreign.text == FOREIGN_BODY
    assert post(url, None, origin="https://evil.example").status_code == 403  # before auth
    own = post(url, token, origin=url.removesuffix("/mcp"))
    assert own.status_code == 200, own.text
    assert own.json()["result"]["serverInfo"]["name"] == "toolbox"


def test_key_rotation(deployed: tuple[str, str], idp: OidcProvider) -> None:
    _target, url = deployed
    before = idp.token(audience=url, scopes=SCOPES)
    assert post(url, before).status_code == 200
    idp.rotate()
    time.sleep(5.5)  # an unknown kid is refetched at most once per 5 s
    after = idp.token(audience=url, scopes=SCOPES)
    accepted = post(url, after)
    assert accepted.status_code == 200, accepted.text
    refused = post(url, before)  # its key is no longer published
    assert refused.status_code == 401 and "kid" in refused.json()["hint"]


@pytest.mark.parametrize("target", TARGETS)
def test_bearer_mode_checks_the_origin_too(target: str, tmp_path: Path) -> None:
    spec = project(tmp_path / "toolbox", None)
    with running(spec, target) as url:
        foreign = post(url, TOKEN, origin="https://evil.example")
        assert foreign.status_code == 403 and foreign.text == FOREIGN_BODY
        assert post(url, None, origin="https://evil.example").status_code == 403
        own = post(url, TOKEN, origin=url.removesuffix("/mcp"))
        assert own.status_code == 200, own.text  # the SDK's host check passes: loopback Host
        assert post(url, TOKEN).status_code == 200
        assert post(url, None).status_code == 401
        seen: dict[str, Any] = mcp_session(url, [("word_count", {"text": "a b c"})], token=TOKEN)
        assert seen["results"] == [{"result": 3}]
