"""The `auth` object of an artifact's runtime config: what every shim's gate reads.

One builder for the three runtimes' configs (the Python shims' `mcp_deploy_runtime.json`, the
Node shims' `MCP_DEPLOY_CONFIG`, the launcher's JSON), so their gates get the same facts. It
holds the spec's `[auth]` only — no environment config, no secret value: the token secret is
named (`token_env`), never read. Modes other than "oauth" give exactly what they always gave
(`mode`, `token_env`), plus `allowed_origins` when the spec lists any, so their artifacts are
byte-identical to those built before mode "oauth" existed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.spec.model import ServerSpec


def runtime_auth(spec: ServerSpec) -> dict[str, Any]:
    """The gate's view of `spec.auth` (see the module doc and docs/auth.md)."""
    auth = spec.auth
    config: dict[str, Any] = {"mode": auth.mode, "token_env": auth.token_secret}
    if auth.mode == "oauth":
        preset = auth.preset
        config |= {
            "issuer": auth.issuer,
            "audience": auth.audience,
            "scopes": list(auth.scopes),
            "algorithms": auth.effective_algorithms,
            "jwks_uri": auth.jwks_uri,
            "audience_claim": preset.audience_claim,
            "scope_claim": preset.scope_claim,
        }
    if auth.allowed_origins:
        config["allowed_origins"] = list(auth.allowed_origins)
    return config
