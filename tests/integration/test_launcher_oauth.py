"""mcp-deploy's launcher in `auth.mode = "oauth"`, built for this machine and run for real in
front of the echo server of tests/integration/test_launcher.py (and, in stdio mode, the raw
stdio server), against a real OpenID provider on loopback (tests/support/oidc.py): the
challenge and the Protected Resource Metadata at both URLs; valid tokens through with their
Authorization header unchanged and the request presented as a loopback one (Origin removed,
X-Forwarded-Host/Proto the original Host and scheme); bad tokens 401 with the other gates'
hints; too few scopes 403; key rotation; 503 when the keys cannot be fetched; the public base
URL from MCP_DEPLOY_PUBLIC_URL, from the Function URL's Host behind the Lambda Web Adapter
(always https), or from X-Forwarded-Proto and Host (Cloud Run); allowed_origins. No token
ever reaches the launcher's log."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.build.launcher import launcher_binary
from targets.base import host_architecture
from targets.shim.mcp_deploy_gate import REFUSALS
from tests.integration.test_launcher import CANARY, TOKEN, Launched, server_dir, start
from tests.integration.test_launcher_stdio import JSON_HEADERS, RAW, launch, tool
from tests.support.net import free_port
from tests.support.oidc import OidcProvider, oidc_provider, tamper_signature, unsigned

pytestmark = pytest.mark.integration

SCOPES = ("mcp:tools", "mcp:admin")
APP = "https://app.example.com"
FUNCTION_HOST = "abcdefghij.lambda-url.eu-west-1.on.aws"
FOREIGN_BODY = (
    b'{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, '
    b'"message": "Forbidden: the Origin is not allowed"}}'
)


@pytest.fixture(scope="module")
def launcher() -> Path:
    return launcher_binary(host_architecture(), lambda _: None)


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    with oidc_provider() as provider:
        yield provider


def oauth_auth(issuer: str, **changes: Any) -> dict[str, Any]:
    """The runtime config's "auth" object in mode oauth (orchestrator.build.auth_config)."""
    return {
        "mode": "oauth",
        "token_env": "MCP_AUTH_TOKEN",
        "issuer": issuer,
        "audience": None,
        "scopes": list(SCOPES),
        "algorithms": ["RS256", "ES256"],
        "jwks_uri": None,
        "audience_claim": "aud",
        "scope_claim": "scope",
        "allowed_origins": [APP],
        **changes,
    }


def start_oauth(
    launcher: Path, directory: Path, auth: dict[str, Any], env: dict[str, str | None]
) -> Launched:
    """The launcher with the echo server in oauth mode, no secrets (none are needed)."""
    server_dir(directory, launcher)
    config = json.loads((directory / "mcp_deploy_runtime.json").read_text())
    config["auth"] = auth
    config["secrets"] = ["API_KEY"]
    (directory / "mcp_deploy_runtime.json").write_text(json.dumps(config))
    return start(directory, env, {"API_KEY": CANARY}).ready()


@pytest.fixture
def served(launcher: Path, tmp_path: Path, idp: OidcProvider) -> Iterator[Launched]:
    """The launcher in oauth mode, its public URL the loopback one (as the emulations say)."""
    port = free_port()
    env: dict[str, str | None] = {
        "PORT": str(port),
        "MCP_DEPLOY_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    launched = start_oauth(launcher, tmp_path, oauth_auth(idp.issuer), env)
    yield launched
    launched.stop()


def base_of(launched: Launched) -> str:
    return f"http://127.0.0.1:{launched.port}"


def post(
    launched: Launched, token: str | None, headers: list[tuple[str, str]] | None = None
) -> tuple[int, dict[str, str], bytes]:
    sent = list(headers or [])
    if token is not None:
        sent.append(("Authorization", f"Bearer {token}"))
    return launched.request("/mcp", sent, method="POST", body=b"{}")


def challenge_of(fields: dict[str, str]) -> dict[str, str]:
    value = fields["www-authenticate"]
    assert value.startswith("Bearer "), value
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


def assert_no_token_logged(launched: Launched, *tokens: str) -> None:
    output = launched.output()
    for token in tokens:
        signature = token.split(".")[2]
        assert token not in output and (not signature or signature not in output)


def test_no_token_gets_the_challenge_and_the_metadata(served: Launched, idp: OidcProvider) -> None:
    base = base_of(served)
    status, fields, body = post(served, None)
    assert status == 401 and fields["content-type"] == "application/json"
    assert fields["www-authenticate"] == (
        f'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp", '
        'scope="mcp:tools mcp:admin"'
    )
    assert json.loads(body) == {
        "error": "unauthorized",
        "hint": f"send Authorization: Bearer <an access token from {idp.issuer}>",
    }
    for path in (
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ):
        status, fields, body = served.request(path, [("Origin", "https://evil.example")])
        assert status == 200, body
        assert fields["content-type"] == "application/json"
        assert fields["access-control-allow-origin"] == "*"
        assert fields["cache-control"] == "public, max-age=300"
        assert json.loads(body) == {
            "resource": f"{base}/mcp",
            "authorization_servers": [idp.issuer],
            "bearer_methods_supported": ["header"],
            "scopes_supported": list(SCOPES),
        }
        assert served.request(path, method="HEAD")[0] == 200
        status, fields, _ = served.request(path, method="OPTIONS")
        assert status == 204 and fields["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
        status, fields, _ = served.request(path, method="POST", body=b"{}")
        assert status == 405 and fields["allow"] == "GET, HEAD, OPTIONS"
    # the health path is the server's, open to all
    assert served.request("/health", [("Origin", "https://evil.example")])[0] == 200


def test_a_valid_token_reaches_the_server_as_a_loopback_request(
    served: Launched, idp: OidcProvider
) -> None:
    base = base_of(served)
    token = idp.token(audience=f"{base}/mcp", scopes=SCOPES)
    for origin in ([], [("Origin", base)], [("Origin", APP)]):
        status, _, body = post(served, token, origin)
        assert status == 200, body
        echo = json.loads(body)
        assert echo["authorization"] == f"Bearer {token}"  # unchanged
        assert echo["origin"] is None
        assert echo["host"] == f"127.0.0.1:{echo['env']['PORT']}"
        assert echo["forwarded_host"] == f"127.0.0.1:{served.port}"  # the original Host
        assert echo["forwarded_proto"] == "https"  # none came in: https, as the Python shims
    status, fields, body = post(served, token, [("Origin", "https://evil.example")])
    assert (status, body) == (403, FOREIGN_BODY) and fields["content-type"] == "application/json"
    assert post(served, None, [("Origin", "null")])[::2] == (403, FOREIGN_BODY)  # before auth
    assert_no_token_logged(served, token)


def test_bad_tokens_are_refused(served: Launched, idp: OidcProvider) -> None:
    resource = f"{base_of(served)}/mcp"
    good = idp.token(audience=resource, scopes=SCOPES)
    cases = {
        "another audience": (
            idp.token(audience="http://127.0.0.1:9/mcp", scopes=SCOPES),
            f"the token's audience is not {resource}",
        ),
        "expired": (
            idp.token(audience=resource, scopes=SCOPES, expired=True),
            "the token has expired",
        ),
        "not yet valid": (
            idp.token(audience=resource, scopes=SCOPES, not_before_in=600),
            "the token is not valid yet (nbf)",
        ),
        "wrong signature": (tamper_signature(good), "the token's signature is invalid"),
        "alg none": (
            unsigned(good),
            "the token's algorithm is not allowed (allowed: ES256, RS256)",
        ),
        "not a JWT": ("opaque-access-token", "the token is not a signed JWT"),
    }
    for name, (token, hint) in cases.items():
        status, fields, body = post(served, token)
        assert status == 401, (name, body)
        challenge = challenge_of(fields)
        assert challenge == {
            "error": "invalid_token",
            "resource_metadata": f"{base_of(served)}/.well-known/oauth-protected-resource/mcp",
            "scope": "mcp:tools mcp:admin",
        }, name
        assert json.loads(body) == {"error": "invalid_token", "hint": hint}, name
    few = idp.token(audience=resource, scopes=("mcp:tools",))
    status, fields, body = post(served, few)
    assert status == 403, body
    assert fields["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", '
        f'resource_metadata="{base_of(served)}/.well-known/oauth-protected-resource/mcp"'
    )
    assert json.loads(body) == {"error": "insufficient_scope", "hint": "the token lacks: mcp:admin"}
    fields_400, body_400 = REFUSALS[400]
    status, fields, body = served.request(
        "/mcp", [("Authorization", f"Bearer {good}"), ("Authorization", f"Bearer {good}")]
    )
    assert (status, body) == (400, body_400)
    assert fields["www-authenticate"] == fields_400["www-authenticate"]
    assert_no_token_logged(
        served, good, few, *(token for token, _ in cases.values() if "." in token)
    )


def test_key_rotation(launcher: Path, tmp_path: Path) -> None:
    with oidc_provider() as provider:
        port = free_port()
        env: dict[str, str | None] = {
            "PORT": str(port),
            "MCP_DEPLOY_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
        launched = start_oauth(launcher, tmp_path, oauth_auth(provider.issuer), env)
        try:
            resource = f"http://127.0.0.1:{port}/mcp"
            before = provider.token(audience=resource, scopes=SCOPES)
            assert post(launched, before)[0] == 200
            provider.rotate()
            time.sleep(5.5)  # an unknown kid is fetched again at most once per 5 s
            after = provider.token(audience=resource, scopes=SCOPES)
            status, _, body = post(launched, after)
            assert status == 200, body
            status, _, body = post(launched, before)  # its key is no longer published
            assert status == 401
            assert json.loads(body)["hint"] == "no key of the issuer matches the token's kid"
        finally:
            launched.stop()


def test_keys_that_cannot_be_fetched_are_503(
    launcher: Path, tmp_path: Path, idp: OidcProvider
) -> None:
    port = free_port()
    env: dict[str, str | None] = {
        "PORT": str(port),
        "MCP_DEPLOY_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    nowhere = f"http://127.0.0.1:{free_port()}/jwks"
    launched = start_oauth(launcher, tmp_path, oauth_auth(idp.issuer, jwks_uri=nowhere), env)
    try:
        token = idp.token(audience=f"http://127.0.0.1:{port}/mcp", scopes=SCOPES)
        status, fields, body = post(launched, token)
        assert status == 503 and fields["content-type"] == "application/json"
        assert json.loads(body) == {
            "error": "temporarily_unavailable",
            "hint": "the issuer's keys cannot be fetched",
        }
        assert "www-authenticate" not in fields
        assert post(launched, None)[0] == 401  # no token: no keys needed
    finally:
        launched.stop()
    assert "the issuer's keys cannot be fetched" in launched.stderr()
    assert_no_token_logged(launched, token)


@pytest.mark.parametrize("platform", ["lambda", "cloudrun"])
def test_the_public_url_comes_from_the_platform(
    platform: str, launcher: Path, tmp_path: Path, idp: OidcProvider
) -> None:
    """Without MCP_DEPLOY_PUBLIC_URL: behind the Lambda Web Adapter, https:// + the Host it
    forwards (the Function URL's); on Cloud Run, X-Forwarded-Proto (default https) + Host."""
    env: dict[str, str | None] = {}
    if platform == "lambda":
        env = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9", "AWS_LWA_PORT": str(free_port())}
    launched = start_oauth(launcher, tmp_path, oauth_auth(idp.issuer), env)
    try:
        host = FUNCTION_HOST if platform == "lambda" else "toolbox-go-abcdefghij-ew.a.run.app"
        scheme = "https" if platform == "lambda" else "http"
        headers = [("Host", host), ("X-Forwarded-Proto", "http")]
        status, fields, _ = launched.request("/mcp", headers, method="POST", body=b"{}")
        assert status == 401
        base = f"{scheme}://{host}"
        assert challenge_of(fields)["resource_metadata"] == (
            f"{base}/.well-known/oauth-protected-resource/mcp"
        )
        token = idp.token(audience=f"{base}/mcp", scopes=SCOPES)
        auth = ("Authorization", f"Bearer {token}")
        status, _, body = launched.request(
            "/mcp", [*headers, auth, ("Origin", base)], method="POST", body=b"{}"
        )
        assert status == 200, body
        assert json.loads(body)["forwarded_host"] == host
        assert json.loads(body)["forwarded_proto"] == "http"  # as it came in
        status, _, body = launched.request(
            "/.well-known/oauth-protected-resource", [("Host", host)]
        )
        assert json.loads(body)["resource"] == f"https://{host}/mcp"  # no X-Forwarded-Proto
    finally:
        launched.stop()


def test_a_bad_public_url_fails_the_start(
    launcher: Path, tmp_path: Path, idp: OidcProvider
) -> None:
    server_dir(tmp_path, launcher)
    config = json.loads((tmp_path / "mcp_deploy_runtime.json").read_text())
    config["auth"] = oauth_auth(idp.issuer)
    (tmp_path / "mcp_deploy_runtime.json").write_text(json.dumps(config))
    launched = start(tmp_path, {"MCP_DEPLOY_PUBLIC_URL": "127.0.0.1:8080/mcp"})
    assert launched.wait() == 1
    assert "MCP_DEPLOY_PUBLIC_URL must be the public base URL" in launched.stderr()


def test_stdio_mode_has_the_same_gate(launcher: Path, tmp_path: Path, idp: OidcProvider) -> None:
    port = free_port()
    env: dict[str, str | None] = {
        "PORT": str(port),
        "MCP_DEPLOY_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    launched = launch(tmp_path, launcher, RAW, env=env, auth=oauth_auth(idp.issuer))
    try:
        body = json.dumps(tool(1, "pid")).encode()
        status, fields, _ = launched.request("/mcp", JSON_HEADERS[1:], method="POST", body=body)
        assert status == 401 and "resource_metadata" in fields["www-authenticate"]
        token = idp.token(audience=f"http://127.0.0.1:{port}/mcp", scopes=SCOPES)
        authorized = [("Authorization", f"Bearer {token}"), *JSON_HEADERS[1:]]
        status, _, answer = launched.request("/mcp", authorized, method="POST", body=body)
        assert status == 200, answer
        assert "result" in json.loads(answer)
        foreign = [*authorized, ("Origin", "https://evil.example")]
        assert launched.request("/mcp", foreign, method="POST", body=body)[::2] == (
            403,
            FOREIGN_BODY,
        )
        own = [*authorized, ("Origin", f"http://127.0.0.1:{port}")]
        assert launched.request("/mcp", own, method="POST", body=body)[0] == 200
        meta = launched.request("/.well-known/oauth-protected-resource/mcp")
        assert meta[0] == 200 and json.loads(meta[2])["resource"] == f"http://127.0.0.1:{port}/mcp"
    finally:
        launched.stop()
    assert_no_token_logged(launched, token)
    assert TOKEN not in launched.output()
