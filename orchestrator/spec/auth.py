"""`[auth]`: who may call the server, and the identity-provider presets of mode "oauth".

Four modes: `bearer` (a static token from a declared secret), `iam` (the platform's IAM),
`none` (public) and `oauth`: the server is an OAuth 2.1 resource server as the MCP
authorization spec describes it. Its gate (in every target's shim) accepts only JWT access
tokens from `issuer`, signed with one of `algorithms` by a key of the issuer's JWKS, for
`audience` (default: the deployed MCP URL), carrying every one of `scopes`; it publishes
Protected Resource Metadata (RFC 9728) and answers 401 with the challenge that points at it.

A preset (`provider`) sets the defaults an identity provider needs (signing algorithms, the
claims that hold the audience and the scopes) and names what it cannot do that MCP clients
expect (`preset_warnings`). Shape checks here; checks across tables in `orchestrator.spec.checks`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field

from orchestrator.spec.server import EnvVarName, StrictModel

Provider = Literal["oidc", "cognito", "entra", "okta", "auth0", "google"]
Algorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 scope-token
ORIGIN = re.compile(r"^(https?)://[^/?#\s]+$")


@dataclass(frozen=True)
class Preset:
    """What an identity provider needs: algorithms it signs with, where its access tokens
    carry the audience and the scopes, whether `audience` must be written (its tokens are
    never bound to the server's URL), the issuer's shape, and what it lacks for MCP clients."""

    title: str
    algorithms: tuple[Algorithm, ...]
    audience_claim: Literal["aud", "client_id"] = "aud"
    scope_claim: Literal["scope", "scp"] = "scope"
    audience_required: str | None = None  # why, when it is
    issuer_example: str = "https://idp.example.com"
    issuer_pattern: re.Pattern[str] | None = None
    warnings: tuple[str, ...] = ()


PRESETS: dict[str, Preset] = {
    "oidc": Preset("a generic OpenID provider", ("RS256", "ES256")),
    "cognito": Preset(
        "Amazon Cognito",
        ("RS256",),
        audience_claim="client_id",
        audience_required="Cognito access tokens carry no `aud`: their `client_id` claim "
        "names the app client, so set audience to the app client's id",
        issuer_example="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123",
        issuer_pattern=re.compile(
            r"^https://cognito-idp\.[a-z0-9-]+\.amazonaws\.com/[a-z0-9-]+_[A-Za-z0-9]+$"
        ),
        warnings=(
            "Cognito has no dynamic client registration and no client ID metadata documents: "
            "register each MCP client as an app client by hand",
            "Cognito ignores RFC 8707 resource indicators: its tokens are bound to the app "
            "client, not to this server's URL",
        ),
    ),
    "entra": Preset(
        "Microsoft Entra ID",
        ("RS256",),
        scope_claim="scp",
        audience_required="Entra ID v2 access tokens carry the application's client id (or "
        "its application ID URI) in `aud`, never the server's URL: set audience to it",
        issuer_example="https://login.microsoftonline.com/<tenant-id>/v2.0",
        issuer_pattern=re.compile(r"^https://login\.microsoftonline\.com/[^/]+/v2\.0$"),
        warnings=(
            "Entra ID has no dynamic client registration: register each MCP client, or give "
            "clients a pre-registered client id",
            "Entra ID v2 does not take RFC 8707 `resource`: clients must ask for the scope "
            "'<application ID URI>/.default' or a named scope of it",
        ),
    ),
    "okta": Preset(
        "Okta",
        ("RS256",),
        scope_claim="scp",
        issuer_example="https://<org>.okta.com/oauth2/default",
        issuer_pattern=re.compile(r"^https://[^/]+/oauth2/[^/]+$"),
        warnings=(
            "Okta issues tokens with the audience its authorization server is configured "
            "with (e.g. api://default), not the one a client asks for: set audience to it, "
            "or configure the server's URL as that authorization server's audience",
            "Okta's dynamic client registration needs an API token: most MCP clients cannot "
            "register themselves",
        ),
    ),
    "auth0": Preset(
        "Auth0",
        ("RS256",),
        issuer_example="https://<tenant>.auth0.com/",
        issuer_pattern=re.compile(r"^https://[^/]+/$"),
        warnings=(
            "Auth0 issues JWT access tokens only for a registered API: create one whose "
            "identifier is this server's URL (or set audience to its identifier); without "
            "it the tokens are opaque and every call is refused",
            "Auth0's dynamic client registration is off by default: enable it in the "
            "tenant's advanced settings if clients are to register themselves",
        ),
    ),
    "google": Preset(
        "Google",
        ("RS256",),
        audience_required="Google signs only ID tokens as JWTs; their `aud` is your OAuth "
        "client id: set audience to it",
        issuer_example="https://accounts.google.com",
        issuer_pattern=re.compile(r"^https://accounts\.google\.com$"),
        warnings=(
            "Google's OAuth access tokens are opaque, not JWTs: the gate can check only "
            "Google-signed ID tokens, which MCP clients do not send as access tokens; put an "
            "authorization server that issues JWT access tokens in front for MCP clients",
            "Google has no dynamic client registration for OAuth clients",
        ),
    ),
}


class AuthSection(StrictModel):
    """`[auth]`: who may call the server."""

    mode: Literal["bearer", "iam", "none", "oauth"] = Field(
        "bearer",
        description="bearer: a token from a declared secret; iam: the platform's IAM; "
        "oauth: OAuth 2.1 access tokens (JWT) from `issuer`, as MCP clients send them; "
        "none: public (only when written explicitly).",
    )
    token_secret: EnvVarName = Field(
        "MCP_AUTH_TOKEN", description="Declared secret holding the bearer token."
    )
    acknowledge_public: bool = Field(
        False,
        description='Required with mode = "none" when any environment deploys to the clouds '
        "(kind pulumi): says, in the spec, that serving the server there without "
        'authentication is intended. Only valid with mode = "none".',
    )
    issuer: str | None = Field(
        None,
        description='mode "oauth": the authorization server; tokens must carry it as `iss`, '
        "exactly. https (http only for a loopback host).",
    )
    audience: str | None = Field(
        None,
        description='mode "oauth": the `aud` tokens must carry (default: the deployed MCP URL, '
        "e.g. https://<function-url>/mcp, as RFC 8707 resource indicators make it).",
    )
    scopes: list[str] = Field(
        default_factory=list,
        description='mode "oauth": scopes a token must carry, all of them (announced in the '
        "metadata and the 401 challenge).",
    )
    provider: Provider = Field(
        "oidc",
        description='mode "oauth": the identity provider preset (signing algorithms, claims, '
        "and warnings about what it lacks): oidc, cognito, entra, okta, auth0, google.",
    )
    algorithms: list[Algorithm] | None = Field(
        None,
        description='mode "oauth": signing algorithms accepted (default: the preset\'s); '
        "'none' and HMAC are never accepted.",
    )
    jwks_uri: str | None = Field(
        None,
        description='mode "oauth": the issuer\'s key set (default: discovered from its metadata).',
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) let through besides the deployment's own; "
        "any other Origin header is refused with 403 (any mode).",
    )

    OAUTH_ONLY: ClassVar[tuple[str, ...]] = (
        "issuer",
        "audience",
        "scopes",
        "provider",
        "algorithms",
        "jwks_uri",
    )

    @property
    def preset(self) -> Preset:
        return PRESETS[self.provider]

    @property
    def effective_algorithms(self) -> list[str]:
        return list(self.algorithms if self.algorithms is not None else self.preset.algorithms)

    def oauth_keys_set(self) -> list[str]:
        """The oauth-only keys written in the spec (an error unless mode is "oauth")."""
        return [key for key in self.OAUTH_ONLY if key in self.model_fields_set]

    def request_view(self) -> dict[str, Any]:
        """What a deployment request records of `[auth]`: the keys of before mode "oauth"
        existed, plus the oauth keys in that mode and `allowed_origins` when set — so requests
        of other modes hash as they always did."""
        view: dict[str, Any] = {
            "mode": self.mode,
            "token_secret": self.token_secret,
            "acknowledge_public": self.acknowledge_public,
        }
        if self.mode == "oauth":
            view |= {
                "issuer": self.issuer,
                "audience": self.audience,
                "scopes": list(self.scopes),
                "provider": self.provider,
                "algorithms": self.effective_algorithms,
                "jwks_uri": self.jwks_uri,
            }
        if self.allowed_origins:
            view["allowed_origins"] = list(self.allowed_origins)
        return view


def url_problem(value: str, what: str) -> str | None:
    """Why `value` is not an https URL (http allowed for loopback hosts), or None."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{what} must be an https URL, e.g. https://idp.example.com"
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        return f"{what} must use https (http only for a loopback host such as 127.0.0.1)"
    if parts.query or parts.fragment:
        return f"{what} must have no query or fragment"
    return None


def origin_problem(value: str) -> str | None:
    """Why `value` is not an Origin (scheme://host[:port], no path), or None."""
    if value == "null":
        return None
    if not ORIGIN.match(value):
        return f"'{value}' is not an origin: write scheme://host[:port], with no path"
    return None
