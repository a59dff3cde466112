"""The OAuth discovery chain against a scripted server (an httpx2 mock transport): each step,
each way it can fail, and the servers that are not OAuth resource servers at all."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from orchestrator.verify.discovery import AuthChain, discover

URL = "https://mcp.example.com/mcp"
PRM = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
ISSUER = "https://idp.example.com"
CHALLENGE = f'Bearer resource_metadata="{PRM}", scope="mcp:tools"'


def issuer_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": f"{ISSUER}/token",
        "registration_endpoint": f"{ISSUER}/reg",
        "code_challenge_methods_supported": ["S256"],
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


def resource_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "resource": URL,
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp:tools"],
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


def server(
    *,
    status: int = 401,
    challenge: str | None = CHALLENGE,
    documents: dict[str, Any] | None = None,
) -> Callable[[httpx2.Request], httpx2.Response]:
    """A handler: POST to URL answers `status` (with `challenge`); GETs serve `documents`."""
    served = {
        PRM: resource_document(),
        f"{ISSUER}/.well-known/oauth-authorization-server": issuer_document(),
    }
    served.update(documents or {})
    seen: list[httpx2.Request] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        assert "authorization" not in request.headers  # the chain never sends a token
        if request.method == "POST":
            headers = {"www-authenticate": challenge} if challenge else {}
            return httpx2.Response(status, headers=headers, json={"error": "unauthorized"})
        document = served.get(str(request.url))
        if document is None:
            return httpx2.Response(404, text="not found")
        if isinstance(document, str):
            return httpx2.Response(200, text=document)
        return httpx2.Response(200, json=document)

    return handle


def walk(handler: Callable[[httpx2.Request], httpx2.Response], **kwargs: Any) -> AuthChain:
    return discover(URL, transport=httpx2.MockTransport(handler), **kwargs)


def by_id(chain: AuthChain) -> dict[str, str]:
    return {step.id: step.status for step in chain.steps}


def test_a_complete_chain() -> None:
    chain = walk(server())
    assert (chain.kind, chain.status) == ("oauth", "passed"), chain.to_dict()
    assert by_id(chain) == {
        "challenge": "SUCCESS",
        "resource-metadata": "SUCCESS",
        "authorization-servers": "SUCCESS",
        "resource-metadata-well-known": "SUCCESS",
        "issuer-metadata": "SUCCESS",
        "pkce": "SUCCESS",
        "client-registration": "SUCCESS",
    }
    assert "scope=mcp:tools" in chain.steps[0].message


def test_the_oidc_location_when_rfc8414_has_nothing() -> None:
    documents = {
        f"{ISSUER}/.well-known/oauth-authorization-server": None,
        f"{ISSUER}/.well-known/openid-configuration": issuer_document(),
    }
    served = server(documents={k: v for k, v in documents.items() if v is not None})

    def handle(request: httpx2.Request) -> httpx2.Response:
        if str(request.url).endswith("oauth-authorization-server"):
            return httpx2.Response(404)
        return served(request)

    chain = walk(handle)
    assert chain.status == "passed"
    [step] = [s for s in chain.steps if s.id == "issuer-metadata"]
    assert step.message.endswith("/.well-known/openid-configuration")


def test_a_resource_for_another_url_fails() -> None:
    other = resource_document(resource="https://other.example.com/mcp")
    chain = walk(server(documents={PRM: other}))
    assert chain.status == "failed"
    assert by_id(chain)["resource-metadata"] == "FAILURE"


def test_a_resource_identity_other_than_the_well_known_path_warns() -> None:
    covering = resource_document(resource="https://mcp.example.com/")
    chain = walk(server(documents={PRM: covering}))
    assert chain.status == "warning"
    assert by_id(chain)["resource-identity"] == "WARNING"


@pytest.mark.parametrize("servers", [[], None, "x", [""]])
def test_no_authorization_server_fails(servers: Any) -> None:
    chain = walk(server(documents={PRM: resource_document(authorization_servers=servers)}))
    assert chain.status == "failed" and by_id(chain)["authorization-servers"] == "FAILURE"


def test_tokens_not_accepted_in_the_header_fail() -> None:
    document = resource_document(bearer_methods_supported=["body"])
    chain = walk(server(documents={PRM: document}))
    assert by_id(chain)["bearer-methods"] == "FAILURE"


@pytest.mark.parametrize("body", ["not json", "[1, 2]"])
def test_metadata_that_is_not_a_json_object_fails(body: str) -> None:
    chain = walk(server(documents={PRM: body}))
    assert chain.status == "failed" and by_id(chain)["resource-metadata"] == "FAILURE"


def test_unreachable_metadata_fails() -> None:
    chain = walk(server(challenge='Bearer resource_metadata="https://mcp.example.com/nope"'))
    assert chain.status == "failed"
    assert "HTTP 404" in chain.steps[-1].message


def test_a_resource_metadata_that_is_not_a_url_fails() -> None:
    chain = walk(server(challenge='Bearer resource_metadata="file:///etc/passwd"'))
    assert chain.status == "failed"


def test_metadata_missing_from_the_well_known_urls_warns() -> None:
    elsewhere = "https://mcp.example.com/meta.json"
    chain = walk(
        server(
            challenge=f'Bearer resource_metadata="{elsewhere}"',
            documents={elsewhere: resource_document(), PRM: resource_document(resource="x")},
        )
    )
    assert chain.status == "warning"
    assert by_id(chain)["resource-metadata-well-known"] == "WARNING"


def test_an_issuer_without_pkce_fails() -> None:
    issuer = issuer_document(code_challenge_methods_supported=["plain"])
    chain = walk(server(documents={f"{ISSUER}/.well-known/oauth-authorization-server": issuer}))
    assert chain.status == "failed" and by_id(chain)["pkce"] == "FAILURE"


def test_an_issuer_clients_cannot_register_with_warns() -> None:
    issuer = issuer_document(registration_endpoint=None)
    chain = walk(server(documents={f"{ISSUER}/.well-known/oauth-authorization-server": issuer}))
    assert chain.status == "warning" and by_id(chain)["client-registration"] == "WARNING"


def test_client_id_metadata_documents_are_a_way_to_register() -> None:
    issuer = issuer_document(registration_endpoint=None, client_id_metadata_document_supported=True)
    chain = walk(server(documents={f"{ISSUER}/.well-known/oauth-authorization-server": issuer}))
    assert chain.status == "passed"
    assert "client ID metadata" in chain.steps[-1].message


def test_an_issuer_mismatch_and_missing_endpoints_fail() -> None:
    issuer = issuer_document(issuer="https://evil.example.com", token_endpoint=None)
    chain = walk(server(documents={f"{ISSUER}/.well-known/oauth-authorization-server": issuer}))
    ids = by_id(chain)
    assert ids["issuer-match"] == "FAILURE" and ids["issuer-endpoints"] == "FAILURE"


def test_an_issuer_without_metadata_fails() -> None:
    chain = walk(server(documents={f"{ISSUER}/.well-known/oauth-authorization-server": "x"}))
    assert by_id(chain)["issuer-metadata"] == "FAILURE"


@pytest.mark.parametrize(
    ("status", "challenge", "kind", "expected"),
    [
        (401, 'Bearer realm="mcp"', "bearer", "not-oauth"),
        (401, None, "bearer", "warning"),
        (403, None, "iam", "not-oauth"),
        (200, None, "open", "not-oauth"),
        (404, None, "unexpected", "failed"),
        (421, None, "unexpected", "failed"),
    ],
)
def test_servers_that_are_not_oauth(
    status: int, challenge: str | None, kind: str, expected: str
) -> None:
    chain = walk(server(status=status, challenge=challenge))
    assert (chain.kind, chain.status) == (kind, expected), chain.to_dict()
    assert len(chain.steps) == 1


def test_a_bearer_server_fails_when_oauth_was_expected() -> None:
    chain = walk(server(challenge='Bearer realm="mcp"'), expect_oauth=True)
    assert (chain.kind, chain.status) == ("bearer", "failed")


def test_nothing_listening() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    chain = walk(refuse)
    assert (chain.kind, chain.status) == ("unreachable", "failed")


def test_the_chain_is_json_ready() -> None:
    json.dumps(walk(server()).to_dict())
