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

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_example_servers import mcp_session
from tests.support import oauth_deploys as oauth
from tests.support.example import example_copy
from tests.support.oauth_deploys import SCOPES, post
from tests.support.oidc import OidcProvider

pytestmark = pytest.mark.integration

TARGETS = ["lambda", "cloudrun"]
TOKEN = "oauth-test-bearer-canary-6d1f20"
# The example's local secret sources (the bearer secret stays declared in oauth mode).
SECRETS = {"TOOLBOX_LOCAL_TOKEN": TOKEN, "TOOLBOX_LOCAL_API_KEY": "oauth-test-apikey-canary-0b77c4"}
idp = oauth.idp


@pytest.fixture(scope="module", params=TARGETS)
def deployed(
    request: pytest.FixtureRequest, idp: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """examples/toolbox (with the tests' Cloud Run base) in oauth mode, on a target."""
    copied = example_copy(tmp_path_factory.mktemp("oauth") / "toolbox", image_base=True)
    with oauth.running(oauth.oauth_spec(copied, idp.issuer), request.param, SECRETS) as url:
        yield request.param, url


@pytest.mark.parametrize("check", oauth.GATE_CHECKS.values(), ids=oauth.GATE_CHECKS.keys())
def test_the_gate(check: oauth.Check, deployed: tuple[str, str], idp: OidcProvider) -> None:
    """No token, the five bad tokens, too few scopes (see `tests.support.oauth_deploys`)."""
    check(*deployed, idp)


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
    oauth.check_origin(*deployed, idp, server="toolbox")  # the SDK's host check: loopback Host


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
    spec = example_copy(tmp_path / "toolbox", image_base=True)
    with oauth.running(spec, target, SECRETS) as url:
        foreign = post(url, TOKEN, origin=oauth.FOREIGN_ORIGIN)
        assert foreign.status_code == 403 and foreign.text == oauth.FOREIGN_BODY
        assert post(url, None, origin=oauth.FOREIGN_ORIGIN).status_code == 403
        own = post(url, TOKEN, origin=url.removesuffix("/mcp"))
        assert own.status_code == 200, own.text  # the SDK's host check passes: loopback Host
        assert post(url, TOKEN).status_code == 200
        assert post(url, None).status_code == 401
        seen: dict[str, Any] = mcp_session(url, [("word_count", {"text": "a b c"})], token=TOKEN)
        assert seen["results"] == [{"result": 3}]
