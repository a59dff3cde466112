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

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from tests.support import oauth_deploys as oauth
from tests.support.binary_servers import example_copy
from tests.support.mirror import REGISTRY, mirror_node_base, new_prefix
from tests.support.node_servers import node_copy
from tests.support.oauth_deploys import SCOPES, post
from tests.support.oidc import OidcProvider

pytestmark = pytest.mark.integration

TARGETS = ["lambda", "cloudrun"]
TOKEN = "oauth-binary-bearer-canary-3e91a4"
SECRETS = {  # the examples' local secret sources (the bearer ones stay declared in oauth mode)
    "TOOLBOX_LOCAL_TOKEN": TOKEN,
    "TOOLBOX_LOCAL_API_KEY": "oauth-binary-apikey-canary-77d0c2",
    "EVERYTHING_LOCAL_TOKEN": TOKEN,
}
idp = oauth.idp


@pytest.fixture(scope="module", params=TARGETS)
def deployed(
    request: pytest.FixtureRequest, idp: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """examples/toolbox-go in oauth mode, on a target."""
    made = example_copy("toolbox-go", tmp_path_factory.mktemp("oauth-binary") / "toolbox-go")
    spec = oauth.oauth_spec(made / "mcp-deploy.toml", idp.issuer)
    with oauth.running(spec, request.param, SECRETS) as url:
        yield request.param, url


@pytest.mark.parametrize("check", oauth.GATE_CHECKS.values(), ids=oauth.GATE_CHECKS.keys())
def test_the_gate(check: oauth.Check, deployed: tuple[str, str], idp: OidcProvider) -> None:
    """No token, the five bad tokens, too few scopes (see `tests.support.oauth_deploys`)."""
    check(*deployed, idp)


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


def test_a_valid_token_works_through_an_mcp_client(
    deployed: tuple[str, str], idp: OidcProvider
) -> None:
    _target, url = deployed
    seen = tools(url, idp.token(audience=url, scopes=SCOPES))
    assert seen["server"] == "toolbox-go"
    assert seen["tools"] == ["add", "greet", "secret_fingerprint", "word_count"]
    assert seen["texts"] == ["42", "Hello, oauth!"]


def test_origin(deployed: tuple[str, str], idp: OidcProvider) -> None:
    oauth.check_origin(*deployed, idp, server="toolbox-go")  # the go-sdk's checks: loopback Host


@pytest.mark.parametrize("target", TARGETS)
def test_a_node_command_server_behind_the_launcher(
    target: str, idp: OidcProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if target == "cloudrun":  # the default Node base, from a loopback mirror of Docker Hub
        prefix = new_prefix()
        mirror_node_base(prefix, "22")
        monkeypatch.setenv("MCP_DEPLOY_REGISTRY_MIRRORS", f"docker.io={REGISTRY}/{prefix}")
    made = node_copy("server-everything", tmp_path / "everything")
    spec = oauth.oauth_spec(made / "mcp-deploy.toml", idp.issuer)
    with oauth.running(spec, target, SECRETS) as url:
        refused = post(url)
        assert refused.status_code == 401, refused.text
        base = url.removesuffix("/mcp")
        assert oauth.challenge_of(refused)["resource_metadata"] == (
            f"{base}/.well-known/oauth-protected-resource/mcp"
        )
        token = idp.token(audience=url, scopes=SCOPES)
        assert post(url, token, origin=oauth.FOREIGN_ORIGIN).status_code == 403
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
