"""The MCP authorization discovery chain, as a client walks it, checked step by step.

1. `challenge`: an MCP initialize POST without credentials. 401 with a Bearer challenge that
   names `resource_metadata` (RFC 9728 §5.1) starts the OAuth chain; 401 without it is a
   bearer-token server, 403 one refused by the platform (IAM), 2xx an open one: none of those
   is an OAuth resource server, which the chain reports as information (a failure only when
   the caller expected OAuth). A 401 without any `WWW-Authenticate` warns (RFC 9110 requires
   one).
2. `resource-metadata`: GET the named metadata: JSON whose `resource` names the URL the client
   used (same origin, its path a prefix: what MCP clients accept; RFC 9728 §3.3 wants it
   identical to the identifier the well-known URL was derived from: a warning otherwise) and
   whose `authorization_servers` is a non-empty list. `bearer_methods_supported`, when given,
   must include "header" (MCP sends the token there).
3. `resource-metadata-well-known`: clients that get no `resource_metadata` look at the
   path-suffixed, then the root, well-known URL: a warning when neither serves the resource.
4. `authorization-server`: per authorization server (up to 3): its metadata at RFC 8414's
   location, then OpenID Connect Discovery's (the order of MCP 2025-11-25): `issuer` equal to
   the server named, `authorization_endpoint` and `token_endpoint` present, `S256` in
   `code_challenge_methods_supported` (MCP clients must refuse a server without PKCE: a
   failure), and a way for clients to register: `registration_endpoint` (dynamic client
   registration) or `client_id_metadata_document_supported` (a warning without either:
   clients then need a client id registered by hand).

No request of the chain carries a token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from orchestrator.verify.challenge import (
    bearer,
    covers,
    issuer_metadata_locations,
    parse_challenges,
    well_known_locations,
)
from orchestrator.verify.conformance import Check
from orchestrator.verify.probe import ACCEPT, initialize_body

TIMEOUT = 10.0
MAX_SERVERS = 3


@dataclass
class AuthChain:
    """The chain's outcome. `kind`: oauth | bearer | iam | open | unreachable | unexpected;
    `status`: passed | warning | failed | not-oauth."""

    kind: str
    status: str
    steps: list[Check] = field(default_factory=list)
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "summary": self.summary,
            "steps": [step.to_dict() for step in self.steps],
        }


def _status(steps: list[Check]) -> str:
    found = {step.status for step in steps}
    if "FAILURE" in found:
        return "failed"
    return "warning" if "WARNING" in found else "passed"


def _get_json(client: Any, url: str) -> tuple[dict[str, Any] | None, str]:
    """(the JSON object at `url`, '') or (None, why not)."""
    try:
        answer = client.get(url, headers={"Accept": "application/json"})
    except Exception as error:
        return None, f"cannot fetch {url}: {type(error).__name__}: {error}"
    if answer.status_code != 200:
        return None, f"{url} answered HTTP {answer.status_code}"
    try:
        document = json.loads(answer.text)
    except ValueError:
        return None, f"{url} is not JSON"
    if not isinstance(document, dict):
        return None, f"{url} is not a JSON object"
    return document, ""


def discover(
    url: str, *, expect_oauth: bool = False, timeout: float = TIMEOUT, transport: Any = None
) -> AuthChain:
    """Walk the chain against the MCP endpoint `url` (see the module docstring;
    `transport`: an httpx2 transport, for tests)."""
    import httpx2

    with httpx2.Client(timeout=timeout, follow_redirects=False, transport=transport) as client:
        return _walk(client, url, expect_oauth)


def _walk(client: Any, url: str, expect_oauth: bool) -> AuthChain:
    headers = {"Accept": ACCEPT, "Content-Type": "application/json"}
    try:
        answer = client.post(url, content=json.dumps(initialize_body()), headers=headers)
    except Exception as error:
        why = f"{type(error).__name__}: {error}"
        step = Check("challenge", "FAILURE", "an unauthenticated initialize", why)
        return AuthChain("unreachable", "failed", [step], f"cannot reach {url}")
    status = int(answer.status_code)
    values = answer.headers.get_list("www-authenticate")
    challenge = bearer(parse_challenges(values))
    metadata_url = challenge.params.get("resource_metadata") if challenge else None
    if status == 401 and metadata_url:
        return _oauth(client, url, challenge.params if challenge else {}, metadata_url)
    kind, summary, level = _not_oauth(status, values)
    first = Check("challenge", level, "an unauthenticated initialize", summary)
    if expect_oauth or kind == "unexpected":
        failure = Check("challenge", "FAILURE", first.description, summary)
        return AuthChain(kind, "failed", [failure], summary)
    return AuthChain(kind, "warning" if level == "WARNING" else "not-oauth", [first], summary)


def _not_oauth(status: int, values: list[str]) -> tuple[str, str, str]:
    """(kind, summary, check status) for an answer that starts no OAuth chain."""
    if status == 401 and not values:
        return (
            "bearer",
            "not an OAuth server: 401 without WWW-Authenticate (RFC 9110 requires a challenge)",
            "WARNING",
        )
    if status == 401:
        return (
            "bearer",
            "not an OAuth server: 401 with a challenge naming no resource_metadata",
            "INFO",
        )
    if status == 403:
        return (
            "iam",
            "not an OAuth server: refused without credentials (403; platform IAM?)",
            "INFO",
        )
    if 200 <= status < 300:
        return "open", "not an OAuth server: it answers without credentials", "INFO"
    return "unexpected", f"an unauthenticated initialize was answered HTTP {status}", "FAILURE"


def _oauth(client: Any, url: str, params: dict[str, str], metadata_url: str) -> AuthChain:
    scope = params.get("scope")
    steps = [
        Check(
            "challenge",
            "SUCCESS",
            "401 with a Bearer challenge naming resource_metadata",
            f"resource_metadata={metadata_url}" + (f", scope={scope}" if scope else ""),
        )
    ]
    if urlsplit(metadata_url).scheme not in ("http", "https"):
        steps.append(
            Check("resource-metadata", "FAILURE", "resource_metadata is a URL", metadata_url)
        )
        return AuthChain("oauth", "failed", steps, "resource_metadata is not an http(s) URL")
    document, why = _get_json(client, metadata_url)
    if document is None:
        steps.append(Check("resource-metadata", "FAILURE", "fetch the resource metadata", why))
        return AuthChain("oauth", "failed", steps, why)
    steps.extend(_resource_checks(document, url, metadata_url))
    resource = document.get("resource")
    steps.append(_well_known(client, url, metadata_url, resource))
    servers = document.get("authorization_servers")
    if isinstance(servers, list):
        for issuer in [s for s in servers if isinstance(s, str)][:MAX_SERVERS]:
            steps.extend(_issuer_checks(client, issuer))
    status = _status(steps)
    summary = {
        "passed": "an OAuth resource server: the discovery chain is complete",
        "warning": "an OAuth resource server; the chain works, with warnings",
        "failed": "an OAuth resource server whose discovery chain is broken",
    }[status]
    return AuthChain("oauth", status, steps, summary)


def _resource_checks(document: dict[str, Any], url: str, metadata_url: str) -> list[Check]:
    steps: list[Check] = []
    resource = document.get("resource")
    what = "the metadata's resource names the URL the client used"
    if not isinstance(resource, str) or not resource:
        steps.append(Check("resource-metadata", "FAILURE", what, "no resource"))
    elif not covers(resource, url):
        why = f"resource {resource} does not cover {url}: clients refuse the metadata"
        steps.append(Check("resource-metadata", "FAILURE", what, why))
    else:
        steps.append(Check("resource-metadata", "SUCCESS", what, f"resource={resource}"))
        derived = _identifier_of(metadata_url)
        if derived is not None and derived.rstrip("/") != resource.rstrip("/"):
            why = (
                f"RFC 9728 §3.3: metadata fetched from {metadata_url} must name {derived}, "
                f"and it names {resource}"
            )
            steps.append(Check("resource-identity", "WARNING", "RFC 9728 resource identity", why))
    servers = document.get("authorization_servers")
    ok = isinstance(servers, list) and any(isinstance(s, str) and s for s in servers)
    steps.append(
        Check(
            "authorization-servers",
            "SUCCESS" if ok else "FAILURE",
            "the metadata names an authorization server",
            ", ".join(servers) if ok and isinstance(servers, list) else "none named",
        )
    )
    methods = document.get("bearer_methods_supported")
    if isinstance(methods, list) and "header" not in methods:
        why = f"bearer_methods_supported is {methods}: MCP sends the token in the header"
        steps.append(Check("bearer-methods", "FAILURE", "tokens accepted in the header", why))
    return steps


def _identifier_of(metadata_url: str) -> str | None:
    """The resource identifier a well-known metadata URL was derived from (RFC 9728 §3.1),
    None for a URL of another form."""
    parts = urlsplit(metadata_url)
    marker = "/.well-known/oauth-protected-resource"
    if not parts.path.startswith(marker):
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path[len(marker) :]}"


def _well_known(client: Any, url: str, metadata_url: str, resource: Any) -> Check:
    what = "the metadata at the well-known URLs (for clients that get no resource_metadata)"
    tried: list[str] = []
    for location in well_known_locations(url):
        if location == metadata_url:
            return Check("resource-metadata-well-known", "SUCCESS", what, location)
        document, why = _get_json(client, location)
        if document is not None and document.get("resource") == resource:
            return Check("resource-metadata-well-known", "SUCCESS", what, location)
        tried.append(why or f"{location} names another resource")
    return Check("resource-metadata-well-known", "WARNING", what, "; ".join(tried))


def _issuer_checks(client: Any, issuer: str) -> list[Check]:
    tried: list[str] = []
    document: dict[str, Any] | None = None
    location = ""
    for location in issuer_metadata_locations(issuer):
        document, why = _get_json(client, location)
        if document is not None:
            break
        tried.append(why)
    what = f"the metadata of the authorization server {issuer} (RFC 8414 / OIDC)"
    if document is None:
        return [Check("issuer-metadata", "FAILURE", what, "; ".join(tried))]
    checks = [Check("issuer-metadata", "SUCCESS", what, location)]
    if document.get("issuer") != issuer:
        why = f"its issuer is {document.get('issuer')!r}, not {issuer!r} (RFC 8414 §3.3)"
        checks.append(Check("issuer-match", "FAILURE", "the metadata names the same issuer", why))
    missing = [k for k in ("authorization_endpoint", "token_endpoint") if not document.get(k)]
    if missing:
        why = "missing " + ", ".join(missing)
        checks.append(
            Check("issuer-endpoints", "FAILURE", "authorization and token endpoints", why)
        )
    methods = document.get("code_challenge_methods_supported")
    if not isinstance(methods, list) or "S256" not in methods:
        why = (
            f"code_challenge_methods_supported is {methods!r}: MCP clients must refuse an "
            "authorization server that does not advertise PKCE with S256"
        )
        checks.append(Check("pkce", "FAILURE", "PKCE with S256", why))
    else:
        checks.append(Check("pkce", "SUCCESS", "PKCE with S256", "S256 advertised"))
    if document.get("registration_endpoint"):
        how = "dynamic client registration (registration_endpoint)"
        checks.append(Check("client-registration", "SUCCESS", "clients can register", how))
    elif document.get("client_id_metadata_document_supported") is True:
        how = "client ID metadata documents"
        checks.append(Check("client-registration", "SUCCESS", "clients can register", how))
    else:
        why = (
            "neither registration_endpoint nor client_id_metadata_document_supported: clients "
            "cannot register themselves and need a client id made by hand at the provider"
        )
        checks.append(Check("client-registration", "WARNING", "clients can register", why))
    return checks
