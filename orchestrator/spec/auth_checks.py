"""Checks of `[auth]` beyond its shape: mode "oauth" and its preset, and `allowed_origins`.

`oauth_problems` are errors (a spec with one does not load); `oauth_warnings` are what
`validate` prints about an identity provider's known gaps for MCP clients. Both name the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from orchestrator.spec.auth import SCOPE, origin_problem, url_problem
from orchestrator.spec.server_checks import targets_in
from targets import registry

if TYPE_CHECKING:
    from orchestrator.errors import Issue
    from orchestrator.spec.loader import LoadedSpec


def oauth_problems(loaded: LoadedSpec) -> Iterator[Issue]:
    """Every error of `[auth]`'s oauth keys and `allowed_origins`."""
    auth = loaded.spec.auth
    for index, origin in enumerate(auth.allowed_origins):
        problem = origin_problem(origin)
        if problem:
            yield loaded.issue(("auth", "allowed_origins", index), problem)
    if auth.mode != "oauth":
        for key in auth.oauth_keys_set():
            yield loaded.issue(
                ("auth", key),
                f'{key} applies only to mode = "oauth"; auth.mode is "{auth.mode}"',
                'remove the line, or set auth.mode = "oauth"',
            )
        return
    preset = auth.preset
    if auth.issuer is None:
        yield loaded.issue(
            ("auth", "issuer"),
            'mode = "oauth" needs the authorization server whose tokens it accepts',
            f'add issuer = "{preset.issuer_example}" under [auth]',
        )
    else:
        problem = url_problem(auth.issuer, "issuer")
        if problem:
            yield loaded.issue(("auth", "issuer"), problem)
    if auth.jwks_uri is not None:
        problem = url_problem(auth.jwks_uri, "jwks_uri")
        if problem:
            yield loaded.issue(("auth", "jwks_uri"), problem)
    yield from _audience(loaded)
    for index, scope in enumerate(auth.scopes):
        if not SCOPE.match(scope):
            yield loaded.issue(
                ("auth", "scopes", index),
                f"'{scope}' is not a scope: no spaces, quotes or backslashes (RFC 6749)",
            )
    if auth.algorithms is not None and not auth.algorithms:
        yield loaded.issue(
            ("auth", "algorithms"),
            "no signing algorithm is allowed: every token would be refused",
            "remove the line to take the preset's, or list e.g. RS256",
        )
    yield from _targets(loaded)


def _audience(loaded: LoadedSpec) -> Iterator[Issue]:
    auth = loaded.spec.auth
    preset = auth.preset
    if auth.audience is None:
        if preset.audience_required:
            yield loaded.issue(
                ("auth", "audience"),
                f"provider = '{auth.provider}' needs an audience: {preset.audience_required}",
                'add audience = "..." under [auth]',
            )
        return
    if not auth.audience.strip():
        yield loaded.issue(("auth", "audience"), "the audience is empty", "remove the line")
    elif auth.audience.startswith(("http://", "https://")):
        problem = url_problem(auth.audience, "an audience that is a URL")
        if problem:
            yield loaded.issue(("auth", "audience"), problem)


def _targets(loaded: LoadedSpec) -> Iterator[Issue]:
    """A target whose shim for this runtime cannot be an OAuth resource server."""
    spec = loaded.spec
    runtime = spec.server.runtime
    refused: dict[str, str] = {}
    for env_name in spec.environment_names():
        for name in targets_in(spec, env_name):
            if runtime not in registry()[name].oauth_runtimes:
                own = name in spec.environment(env_name).targets.declared()
                refused.setdefault(
                    name, f"environments.{env_name}.targets.{name}" if own else f"targets.{name}"
                )
    for name, table in sorted(refused.items()):
        target = registry()[name]
        yield loaded.issue(
            ("auth", "mode"),
            f'auth.mode = "oauth" is not available for runtime = "{runtime}" on {target.title} '
            f"({table})",
            f'remove [{table}], or use auth.mode = "bearer" there',
        )


def oauth_warnings(loaded: LoadedSpec) -> Iterator[Issue]:
    """What the preset's identity provider lacks for MCP clients, and an issuer that does not
    look like that provider's."""
    auth = loaded.spec.auth
    if auth.mode != "oauth":
        return
    preset = auth.preset
    if (
        auth.issuer is not None
        and preset.issuer_pattern is not None
        and not preset.issuer_pattern.match(auth.issuer)
    ):
        yield loaded.issue(
            ("auth", "issuer"),
            f"'{auth.issuer}' does not look like an issuer of {preset.title} "
            f"(e.g. {preset.issuer_example})",
            "tokens must carry this exact issuer as `iss`: copy it from the provider's "
            "discovery document",
        )
    for warning in preset.warnings:
        yield loaded.issue(("auth", "provider"), warning)
