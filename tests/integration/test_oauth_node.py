"""`auth.mode = "oauth"` for a Node fetch-handler server (the TypeScript example, bundled with
the Node shims and jose) deployed to local on Lambda (nodejs22.x under AWS's runtime client),
Cloud Run (Docker, `node:22-slim` from a loopback mirror of Docker Hub) and Workers (workerd),
against a real OpenID provider on loopback (`tests.support.oidc`: panva's oidc-provider,
issuing ES256 JWT access tokens for an RFC 8707 resource).

On every target: no token -> 401 with the challenge; the metadata URL it names and the root
well-known URL -> 200 naming the deployment's URL as the resource; a token for another
audience, an expired one, one not valid yet, one with a broken signature, one with
`alg: none` -> 401 invalid_token; too few scopes -> 403; a valid token -> the tools work
through the official MCP client; a foreign Origin -> 403, the deployment's own one passes; the
issuer's key rotated -> the new key's tokens pass.

Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000), node and npm.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support import oauth_deploys
from tests.support.cli import mcp_deploy
from tests.support.mirror import REGISTRY, mirror_node_base, new_prefix
from tests.support.node_servers import node_copy
from tests.support.oauth_deploys import FOREIGN_ORIGIN, SCOPES, oauth_spec
from tests.support.oidc import OidcProvider, tamper_signature, unsigned

pytestmark = pytest.mark.integration

LISTED = "https://app.example"
WELL_KNOWN = "/.well-known/oauth-protected-resource"
idp = oauth_deploys.idp


@pytest.fixture(scope="module")
def hub_mirror() -> str:
    """`MCP_DEPLOY_REGISTRY_MIRRORS` serving the default Node base from loopback."""
    prefix = new_prefix()
    mirror_node_base(prefix, "22")
    return f"docker.io={REGISTRY}/{prefix}"


def environment(mirrors: str) -> dict[str, str]:
    return {
        "TOOLBOX_LOCAL_TOKEN": "unused-in-oauth-mode",
        "TOOLBOX_LOCAL_API_KEY": "oauth-node-key",
        "MCP_DEPLOY_REGISTRY_MIRRORS": mirrors,
    }


def deployed_url(spec: Path, env: dict[str, str], target: str) -> str:
    """Deploy; the URL. Without an access token the deploy's gate walks the OAuth discovery
    chain (401 challenge, metadata, the issuer's metadata) and says no tool was called."""
    env = {k: v for k, v in env.items() if k != "MCP_DEPLOY_ACCESS_TOKEN"}
    done = mcp_deploy(spec, env, "--target", target, "--env", "local", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(done.stdout)["record"]
    assert record["status"] == "verified"
    assert "no tool was called" in record["smoke"]["hint"]
    return str(record["url"])


def post(
    url: str, token: str | None = None, origin: str | None = None, method: str = "POST"
) -> tuple[int, dict[str, str], bytes]:
    """One request: a tools/list JSON-RPC call (POST) or a plain GET."""
    headers = {"Accept": "application/json, text/event-stream"}
    body = None
    if method == "POST":
        headers["Content-Type"] = "application/json"
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if origin is not None:
        headers["Origin"] = origin
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return (
                int(answer.status),
                {k.lower(): v for k, v in answer.headers.items()},
                answer.read(),
            )
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def greet(url: str, token: str) -> str:
    """The greet tool's result through the official MCP client, with `token`."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def talk() -> str:
        async with (
            httpx2.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = await session.list_tools()
            assert "greet" in {tool.name for tool in tools.tools}
            result = await session.call_tool("greet", {"name": "oauth"})
            assert not result.is_error, result
            return json.dumps(result.model_dump(mode="json"))

    return anyio.run(talk)


def invalid(answer: tuple[int, dict[str, str], bytes], metadata: str) -> str:
    """The hint of a 401 invalid_token answer (checked)."""
    status, headers, body = answer
    assert status == 401, (status, body)
    assert headers["www-authenticate"] == (
        f'Bearer error="invalid_token", resource_metadata="{metadata}", scope="mcp:tools mcp:admin"'
    )
    document: dict[str, Any] = json.loads(body)
    assert document["error"] == "invalid_token"
    return str(document["hint"])


@pytest.mark.parametrize("target", ["lambda", "cloudrun", "workers"])
def test_oauth_resource_server_on_each_target(
    target: str, tmp_path: Path, hub_mirror: str, idp: OidcProvider
) -> None:
    project = node_copy("toolbox-ts", tmp_path / "toolbox-ts")
    spec = oauth_spec(project / "mcp-deploy.toml", idp.issuer, allowed_origins=[LISTED])
    env = environment(hub_mirror)
    try:
        url = deployed_url(spec, env, target)
        base = url.removesuffix("/mcp")
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base), url

        # No token: the challenge, naming the metadata and the scopes.
        status, headers, body = post(url)
        assert status == 401, body
        challenge = headers["www-authenticate"]
        assert challenge == (
            f'Bearer resource_metadata="{base}{WELL_KNOWN}/mcp", scope="mcp:tools mcp:admin"'
        )
        assert json.loads(body)["error"] == "unauthorized"
        metadata = re.search(r'resource_metadata="([^"]+)"', challenge)
        assert metadata is not None
        for where in (metadata[1], base + WELL_KNOWN):
            status, headers, body = post(where, method="GET", origin=FOREIGN_ORIGIN)
            assert status == 200, (where, body)
            assert headers["content-type"] == "application/json"
            assert headers["access-control-allow-origin"] == "*"
            assert json.loads(body) == {
                "resource": url,
                "authorization_servers": [idp.issuer],
                "bearer_methods_supported": ["header"],
                "scopes_supported": list(SCOPES),
            }

        # Tokens the gate refuses, each derived from a real one.
        valid = idp.token(audience=url, scopes=SCOPES)
        refused = {
            "another audience": idp.token(audience="http://127.0.0.1:1/mcp", scopes=SCOPES),
            "expired": idp.token(audience=url, scopes=SCOPES, expired=True),
            "not yet valid": idp.token(audience=url, scopes=SCOPES, not_before_in=600),
            "wrong signature": tamper_signature(valid),
            "alg none": unsigned(valid),
        }
        hints = {what: invalid(post(url, token), metadata[1]) for what, token in refused.items()}
        assert "audience" in hints["another audience"], hints
        assert "expired" in hints["expired"], hints
        assert "not valid yet" in hints["not yet valid"], hints
        assert "signature" in hints["wrong signature"], hints
        assert "algorithm" in hints["alg none"], hints
        for token in refused.values():
            assert token not in json.dumps(hints)

        # Too few scopes: 403.
        status, headers, body = post(url, idp.token(audience=url, scopes=("mcp:tools",)))
        assert status == 403, body
        assert headers["www-authenticate"] == (
            'Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", '
            f'resource_metadata="{metadata[1]}"'
        )
        assert json.loads(body) == {
            "error": "insufficient_scope",
            "hint": "the token lacks: mcp:admin",
        }

        # A valid token: the tools work through a real MCP client.
        assert "Hello, oauth!" in greet(url, valid)

        # Origin: foreign refused (even with a valid token), own and listed ones pass.
        status, _, body = post(url, valid, origin=FOREIGN_ORIGIN)
        assert status == 403, body
        assert json.loads(body)["error"]["code"] == -32600
        for origin in (base, LISTED):
            status, _, body = post(url, valid, origin=origin)
            assert status == 200, (origin, body)

        # The issuer rotates its key: once the gate may refetch (5 s after its last fetch),
        # tokens signed with the new key pass, and the old key's are refused.
        idp.rotate()
        time.sleep(5.2)
        assert "Hello, oauth!" in greet(url, idp.token(audience=url, scopes=SCOPES))
        hint = invalid(post(url, valid), metadata[1])
        assert "kid" in hint, hint
    finally:
        mcp_deploy(spec, env, "destroy", "--target", target, "--env", "local", "--yes")
