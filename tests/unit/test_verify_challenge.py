"""WWW-Authenticate parsing (RFC 9110 grammar; RFC 6750 / RFC 9728 parameters), whether a
protected resource covers a URL, and where clients look for metadata."""

from __future__ import annotations

import pytest

from orchestrator.verify.challenge import (
    Challenge,
    bearer,
    covers,
    issuer_metadata_locations,
    parse_challenges,
    well_known_locations,
)


def test_the_mcp_challenge() -> None:
    value = (
        'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource'
        '/mcp", scope="mcp:tools mcp:admin"'
    )
    [found] = parse_challenges([value])
    assert found.scheme == "bearer"
    assert found.params == {
        "resource_metadata": "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
        "scope": "mcp:tools mcp:admin",
    }


def test_several_challenges_in_one_value_and_in_several() -> None:
    values = [
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
        'bearer error=invalid_token , Resource_Metadata="https://a/b"',
    ]
    found = parse_challenges(values)
    assert [c.scheme for c in found] == ["newauth", "basic", "bearer"]
    assert found[0].params == {"realm": "apps", "type": "1", "title": 'Login to "apps"'}
    assert found[1].params == {"realm": "simple"}
    assert found[2].params == {"error": "invalid_token", "resource_metadata": "https://a/b"}
    assert bearer(found) is found[2]


def test_token68_bare_schemes_and_commas() -> None:
    found = parse_challenges(["Negotiate abc+/==, Bearer", ", ,Basic"])
    assert found == [
        Challenge("negotiate", {}, "abc+/=="),
        Challenge("bearer", {}),
        Challenge("basic", {}),
    ]


def test_a_comma_inside_quotes_belongs_to_the_value() -> None:
    [found] = parse_challenges(['Bearer scope="a,b", error="x"'])
    assert found.params == {"scope": "a,b", "error": "x"}


def test_spaces_around_the_equals_sign_are_allowed() -> None:
    [found] = parse_challenges(['Bearer resource_metadata = "https://x/y" ,scope= "s"'])
    assert found.params == {"resource_metadata": "https://x/y", "scope": "s"}


@pytest.mark.parametrize(
    "value",
    ['Bearer realm="unterminated', "Bearer =x", "@@@", "", 'Bearer realm="a" junk="b'],
)
def test_malformed_values_never_raise(value: str) -> None:
    parse_challenges([value])


def test_a_malformed_tail_keeps_what_came_before() -> None:
    found = parse_challenges(['Bearer realm="a", scope="unterminated'])
    assert found[0].scheme == "bearer" and found[0].params.get("realm") == "a"


def test_no_bearer_challenge() -> None:
    assert bearer(parse_challenges(['Basic realm="x"'])) is None


@pytest.mark.parametrize(
    ("resource", "url", "expected"),
    [
        ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp", True),
        ("https://mcp.example.com/mcp/", "https://mcp.example.com/mcp", True),
        ("https://MCP.example.com:443/", "https://mcp.example.com/mcp", True),
        ("https://mcp.example.com", "https://mcp.example.com/a/mcp", True),
        ("https://mcp.example.com/mc", "https://mcp.example.com/mcp", False),
        ("https://mcp.example.com/mcp", "https://mcp.example.com/", False),
        ("http://mcp.example.com/mcp", "https://mcp.example.com/mcp", False),
        ("https://other.example.com/mcp", "https://mcp.example.com/mcp", False),
        ("https://mcp.example.com:8443/mcp", "https://mcp.example.com/mcp", False),
        ("https://mcp.example.com/mcp#x", "https://mcp.example.com/mcp", False),
        ("https://mcp.example.com:bad/mcp", "https://mcp.example.com/mcp", False),
        ("http://127.0.0.1:8123/mcp", "http://127.0.0.1:8123/mcp", True),
    ],
)
def test_covers(resource: str, url: str, expected: bool) -> None:
    assert covers(resource, url) is expected


def test_well_known_locations() -> None:
    assert well_known_locations("https://h.example/mcp/") == [
        "https://h.example/.well-known/oauth-protected-resource/mcp",
        "https://h.example/.well-known/oauth-protected-resource",
    ]
    assert well_known_locations("http://127.0.0.1:9/") == [
        "http://127.0.0.1:9/.well-known/oauth-protected-resource"
    ]


def test_issuer_metadata_locations_follow_mcp_order() -> None:
    assert issuer_metadata_locations("https://idp.example") == [
        "https://idp.example/.well-known/oauth-authorization-server",
        "https://idp.example/.well-known/openid-configuration",
    ]
    assert issuer_metadata_locations("https://idp.example/tenant/v2/") == [
        "https://idp.example/.well-known/oauth-authorization-server/tenant/v2",
        "https://idp.example/.well-known/openid-configuration/tenant/v2",
        "https://idp.example/tenant/v2/.well-known/openid-configuration",
    ]
