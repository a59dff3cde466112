"""`auth.mode = "oauth"`: its keys, presets and their warnings, `allowed_origins`, what reaches
the artifact's runtime config and the deployment request."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.build.auth_config import runtime_auth
from orchestrator.spec.checks import spec_warnings
from orchestrator.spec.loader import load_spec
from tests.unit.test_guard_rails import LAMBDA, SERVER, WORKERS, at, issues_of

Project = Callable[..., Path]

OAUTH = '[auth]\nmode = "oauth"\nissuer = "https://idp.example.com"\nscopes = ["mcp:tools"]\n'


def test_an_oauth_spec_gives_its_gate_every_fact(project: Project) -> None:
    loaded = load_spec(project(SERVER + OAUTH + LAMBDA))
    assert runtime_auth(loaded.spec) == {
        "mode": "oauth",
        "token_env": "MCP_AUTH_TOKEN",
        "issuer": "https://idp.example.com",
        "audience": None,
        "scopes": ["mcp:tools"],
        "algorithms": ["RS256", "ES256"],
        "jwks_uri": None,
        "audience_claim": "aud",
        "scope_claim": "scope",
    }
    assert spec_warnings(loaded) == []  # the generic preset has no known gap


def test_other_modes_give_what_they_always_gave(project: Project) -> None:
    loaded = load_spec(project(SERVER + "[secrets.MCP_AUTH_TOKEN]\n" + LAMBDA))
    assert runtime_auth(loaded.spec) == {"mode": "bearer", "token_env": "MCP_AUTH_TOKEN"}
    assert loaded.spec.auth.request_view() == {
        "mode": "bearer",
        "token_secret": "MCP_AUTH_TOKEN",
        "acknowledge_public": False,
    }


def test_allowed_origins_reach_every_mode(project: Project) -> None:
    text = (
        SERVER + '[secrets.MCP_AUTH_TOKEN]\n[auth]\nallowed_origins = ["https://app.example.com",'
        ' "http://localhost:6274"]\n' + LAMBDA
    )
    spec = load_spec(project(text)).spec
    assert runtime_auth(spec)["allowed_origins"] == [
        "https://app.example.com",
        "http://localhost:6274",
    ]
    assert spec.auth.request_view()["allowed_origins"] == runtime_auth(spec)["allowed_origins"]


def test_an_origin_with_a_path_is_refused(project: Project) -> None:
    text = SERVER + '[secrets.MCP_AUTH_TOKEN]\n[auth]\nallowed_origins = ["https://a.example/x"]\n'
    issue = at(issues_of(project(text)), "auth.allowed_origins[0]")
    assert "scheme://host[:port]" in issue.message


def test_oauth_needs_an_issuer(project: Project) -> None:
    issue = at(issues_of(project(SERVER + '[auth]\nmode = "oauth"\n')), "auth.issuer")
    assert issue.hint is not None and "issuer =" in issue.hint


@pytest.mark.parametrize(
    ("issuer", "words"),
    [
        ("http://idp.example.com", "https"),
        ("idp.example.com", "https URL"),
        ("https://idp.example.com?x=1", "no query"),
    ],
)
def test_the_issuer_must_be_https(project: Project, issuer: str, words: str) -> None:
    text = SERVER + f'[auth]\nmode = "oauth"\nissuer = "{issuer}"\n'
    assert words in at(issues_of(project(text)), "auth.issuer").message


def test_a_loopback_issuer_may_use_http(project: Project) -> None:
    text = SERVER + '[auth]\nmode = "oauth"\nissuer = "http://127.0.0.1:8444"\n'
    assert load_spec(project(text)).spec.auth.issuer == "http://127.0.0.1:8444"


def test_oauth_keys_without_oauth_are_refused(project: Project) -> None:
    text = SERVER + '[secrets.MCP_AUTH_TOKEN]\n[auth]\nissuer = "https://idp.example.com"\n'
    issue = at(issues_of(project(text)), "auth.issuer")
    assert 'only to mode = "oauth"' in issue.message


def test_a_scope_with_a_space_is_refused(project: Project) -> None:
    text = SERVER + OAUTH.replace('["mcp:tools"]', '["mcp tools"]')
    assert "not a scope" in at(issues_of(project(text)), "auth.scopes[0]").message


def test_none_and_hmac_are_not_algorithms(project: Project) -> None:
    for algorithm in ("none", "HS256"):
        text = SERVER + OAUTH + f'algorithms = ["{algorithm}"]\n'
        assert at(issues_of(project(text)), "auth.algorithms[0]")


def test_cognito_needs_the_app_client_as_audience(project: Project) -> None:
    issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
    text = SERVER + f'[auth]\nmode = "oauth"\nprovider = "cognito"\nissuer = "{issuer}"\n'
    issue = at(issues_of(project(text)), "auth.audience")
    assert "client_id" in issue.message
    loaded = load_spec(project(text + 'audience = "4abc"\n'))
    auth = runtime_auth(loaded.spec)
    assert (auth["audience_claim"], auth["algorithms"]) == ("client_id", ["RS256"])
    warnings = [w.message for w in spec_warnings(loaded) if w.where == "auth.provider"]
    assert any("no dynamic client registration" in message for message in warnings)


def test_a_preset_warns_about_an_issuer_of_another_shape(project: Project) -> None:
    text = SERVER + '[auth]\nmode = "oauth"\nprovider = "okta"\nissuer = "https://acme.okta.com"\n'
    loaded = load_spec(project(text))
    warning = next(w for w in spec_warnings(loaded) if w.where == "auth.issuer")
    assert "does not look like an issuer of Okta" in warning.message
    assert runtime_auth(loaded.spec)["scope_claim"] == "scp"


def test_a_python_worker_cannot_be_an_oauth_server(project: Project) -> None:
    issue = at(issues_of(project(SERVER + OAUTH + WORKERS)), "auth.mode")
    assert 'runtime = "python" on Cloudflare Workers (targets.workers)' in issue.message


def test_the_request_records_the_oauth_keys(project: Project) -> None:
    spec = load_spec(project(SERVER + OAUTH + LAMBDA)).spec
    view = spec.auth.request_view()
    assert view["issuer"] == "https://idp.example.com"
    assert view["algorithms"] == ["RS256", "ES256"]
    json.dumps(view)  # JSON-ready
