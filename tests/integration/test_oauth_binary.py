"""Binary servers in oauth mode, for real, on both local emulations: the Go example
(examples/toolbox-go, on the official go-sdk, whose DNS-rebinding protection stays on) built
with `auth.mode = "oauth"` against a real OpenID provider on loopback (`oidc-provider`, see
tests/support/oidc.py), behind mcp-deploy's launcher: in the Lambda emulation behind AWS's
Lambda Web Adapter, and in a Cloud Run container (from scratch: no CA bundle in the image).

On each target: no token → 401 with the challenge, whose metadata URL (and the root one)
answers the deployment's resource; a token for another audience, expired, not yet valid, with
a flipped signature byte, or re-encoded with `alg: none` → 401; a valid token lacking a scope
→ 403 insufficient_scope; a valid token → the tools work through the MCP client; a foreign
Origin → 403, the deployment's own → 200. And a Node `command` server behind the same
launcher (`@modelcontextprotocol/server-everything`, unmodified) on both targets: the
challenge, a valid token through the MCP client, a foreign Origin refused.

The deployments are started the way the local engine starts them (`flow.plan`, then the
target's local runtime), not through `deploy`: the smoke test is not part of what is tested.
Needs `scripts/services start` (Docker engine), go, cargo (the Web Adapter, once per machine)
and Node 22 (the OpenID provider), a registry on 127.0.0.1:5000 (the Node base, mirrored).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from orchestrator.deploy import flow
from orchestrator.environments import Overrides
from orchestrator.local.engine import LocalEngine, runtime_for
from orchestrator.paths import ProjectPaths
from orchestrator.spec.loader import load_spec
from tests.support.binary_servers import example_copy
from tests.support.mcp_wire import INITIALIZE
from tests.support.mirror import REGISTRY, mirror_node_base, new_prefix
from tests.support.node_servers import node_copy
from tests.support.oidc import OidcProvider, oidc_provider, tamper_signature, unsigned

pytestmark = pytest.mark.integration

TARGETS = ["lambda", "cloudrun"]
TOKEN = "oauth-binary-bearer-canary-3e91a4"
API_KEY = "oauth-binary-apikey-canary-77d0c2"
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
    """The example's local secret sources (its bearer secret stays declared in oauth mode)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOOLBOX_LOCAL_TOKEN", TOKEN)
        patch.setenv("TOOLBOX_LOCAL_API_KEY", API_KEY)
        patch.setenv("EVERYTHING_LOCAL_TOKEN", TOKEN)
        yield


def project(destination: Path, issuer: str, copy: Callable[[Path], Path] | None = None) -> Path:
    """toolbox-go (or what `copy(destination)` makes) in oauth mode with `issuer`, every
    scope of SCOPES required, the keys discovered from the issuer's metadata."""
    made = example_copy("toolbox-go", destination) if copy is None else copy(destination)
    spec = made / "mcp-deploy.toml"
    text = spec.read_text()
    assert BEARER_AUTH in text, "the example's [auth] changed: update this test"
    oauth = f'[auth]\nmode = "oauth"\nissuer = "{issuer}"\nscopes = {json.dumps(list(SCOPES))}\n'
    spec.write_text(text.replace(BEARER_AUTH, oauth))
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
    spec = project(tmp_path_factory.mktemp(f"oauth-binary-{target}") / "toolbox-go", idp.issuer)
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


def tools(url: str, token: str) -> dict[str, Any]:
    """initialize, tools/list, add and greet through the MCP SDK's client, with `token`."""
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def talk() -> dict[str, Any]:
        async with (
            httpx2.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            listed = await session.list_tools()
            texts = []
            for name, arguments in (("add", {"a": 2, "b": 40}), ("greet", {"name": "oauth"})):
                result = await session.call_tool(name, arguments)
                assert not result.is_error, result
                texts.append(result.content[0].text)  # type: ignore[union-attr]
            return {
                "server": init.server_info.name,
                "tools": sorted(tool.name for tool in listed.tools),
                "texts": texts,
            }

    return anyio.run(talk)


def test_no_token_gets_the_challenge_and_the_metadata(
    deployed: tuple[str, str], idp: OidcProvider
) -> None:
    _target, url = deployed
    base = url.removesuffix("/mcp")
    refused = post(url)
    assert refused.status_code == 401, refused.text
    assert challenge_of(refused) == {
        "resource_metadata": f"{base}/.well-known/oauth-protected-resource/mcp",
        "scope": "mcp:tools mcp:admin",
    }
    assert refused.json() == {
        "error": "unauthorized",
        "hint": f"send Authorization: Bearer <an access token from {idp.issuer}>",
    }
    for metadata_url in (
        f"{base}/.well-known/oauth-protected-resource/mcp",
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
        assert refused.status_code == 401, (name, refused.text)
        assert challenge_of(refused)["error"] == "invalid_token", name
        assert refused.json() == {"error": "invalid_token", "hint": hint}, name
        assert token not in refused.text


def test_a_token_lacking_a_scope_is_403(deployed: tuple[str, str], idp: OidcProvider) -> None:
    _target, url = deployed
    refused = post(url, idp.token(audience=url, scopes=("mcp:tools",)))
    assert refused.status_code == 403, refused.text
    challenge = challenge_of(refused)
    assert challenge["error"] == "insufficient_scope"
    assert challenge["scope"] == "mcp:tools mcp:admin"
    assert refused.json() == {"error": "insufficient_scope", "hint": "the token lacks: mcp:admin"}


def test_a_valid_token_works_through_an_mcp_client(
    deployed: tuple[str, str], idp: OidcProvider
) -> None:
    _target, url = deployed
    seen = tools(url, idp.token(audience=url, scopes=SCOPES))
    assert seen["server"] == "toolbox-go"
    assert seen["tools"] == ["add", "greet", "secret_fingerprint", "word_count"]
    assert seen["texts"] == ["42", "Hello, oauth!"]


def test_origin(deployed: tuple[str, str], idp: OidcProvider) -> None:
    _target, url = deployed
    token = idp.token(audience=url, scopes=SCOPES)
    foreign = post(url, token, origin="https://evil.example")
    assert foreign.status_code == 403 and foreign.text == FOREIGN_BODY
    assert post(url, None, origin="https://evil.example").status_code == 403  # before auth
    own = post(url, token, origin=url.removesuffix("/mcp"))
    assert own.status_code == 200, own.text  # the go-sdk's checks pass: loopback Host, no Origin
    assert own.json()["result"]["serverInfo"]["name"] == "toolbox-go"


@pytest.mark.parametrize("target", TARGETS)
def test_a_node_command_server_behind_the_launcher(
    target: str, idp: OidcProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if target == "cloudrun":  # the default Node base, from a loopback mirror of Docker Hub
        prefix = new_prefix()
        mirror_node_base(prefix, "22")
        monkeypatch.setenv("MCP_DEPLOY_REGISTRY_MIRRORS", f"docker.io={REGISTRY}/{prefix}")
    spec = project(
        tmp_path / "everything", idp.issuer, lambda where: node_copy("server-everything", where)
    )
    with running(spec, target) as url:
        refused = post(url)
        assert refused.status_code == 401, refused.text
        base = url.removesuffix("/mcp")
        assert challenge_of(refused)["resource_metadata"] == (
            f"{base}/.well-known/oauth-protected-resource/mcp"
        )
        token = idp.token(audience=url, scopes=SCOPES)
        assert post(url, token, origin="https://evil.example").status_code == 403
        assert post(url, idp.token(audience=url, scopes=("mcp:tools",))).status_code == 403
        echoed = anyio.run(_echo, url, token)
        assert echoed == "Echo: oauth"


async def _echo(url: str, token: str) -> str:
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("echo", {"message": "oauth"})
        assert not result.is_error, result
        text: str = result.content[0].text  # type: ignore[union-attr]
        return text
