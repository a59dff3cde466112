"""The smoke test as a deploy's gate: the request's MCP tool call against a deployment, with
the environment's own bearer token (read from its source at that moment).

An OAuth resource server (`auth.mode = "oauth"`) accepts only access tokens its issuer minted
for its own URL, which a deploy cannot mint. With an access token in `MCP_DEPLOY_ACCESS_TOKEN`
(a pipeline that fetched one, e.g. by client credentials, for the deployment's URL) the smoke
test calls the tools with it; without one, it checks what every MCP client meets first, and
which proves the server started and its gate answers: the 401 challenge, the Protected
Resource Metadata it names, and the issuer's metadata (`orchestrator.verify.discovery`). The
result says that no tool was called.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from orchestrator.deploy.request import DeploymentRequest
from orchestrator.environments import check_environment_name
from orchestrator.paths import ProjectPaths
from orchestrator.smoke import SmokeResult, smoke
from orchestrator.spec.loader import LoadedSpec


def smoke_request(
    loaded: LoadedSpec, request: DeploymentRequest, url: str, host: str | None = None
) -> SmokeResult:
    """The request's smoke test against `url`, with the environment's own token. `host` is the
    Host the platform presents to the server (named when the server refuses it)."""
    settings = request.smoke
    token = environment_token(loaded, request.environment)
    if request.auth.get("mode") == "oauth" and token is None:
        return oauth_challenge_smoke(url, timeout=float(settings.get("timeout") or 30.0))
    return smoke(
        url,
        token=token,
        tool=settings.get("tool"),
        arguments=settings.get("arguments") or {},
        expect=settings.get("expect"),
        timeout=float(settings.get("timeout") or 30.0),
        host=host,
        sdk_of=sdk_reader(loaded, request.artifact.digest),
    )


def sdk_reader(loaded: LoadedSpec, digest: str) -> Callable[[], dict[str, str]]:
    """Reads which MCP SDK the stored artifact `digest` holds, when called (only a 421 asks)."""

    def read() -> dict[str, str]:
        from orchestrator.build.inspect import sdk_versions

        paths = ProjectPaths(loaded.root)
        return sdk_versions(
            paths.store / "blobs" / "sha256" / digest.partition(":")[2], paths.store
        )

    return read


def oauth_challenge_smoke(url: str, timeout: float) -> SmokeResult:
    """The smoke test of an OAuth resource server without an access token: the discovery
    chain a client walks (see the module doc). `ok` when no step of it failed."""
    import time

    from orchestrator.verify.discovery import discover

    started = time.monotonic()
    chain = discover(url, expect_oauth=True, timeout=min(timeout, 10.0))
    failed = [step for step in chain.steps if step.status == "FAILURE"]
    result = SmokeResult(url=url, ok=not failed, status=401 if chain.kind == "oauth" else None)
    result.first_response_ms = round((time.monotonic() - started) * 1000, 1)
    if failed:
        step = failed[0]
        result.failure = f"the OAuth discovery chain failed at {step.id}: {step.message}"
        result.hint = "see docs/auth.md; `mcp-deploy verify URL` shows every step"
    else:
        result.hint = (
            f"no tool was called: checked the 401 challenge and the metadata clients discover "
            f"(set {ACCESS_TOKEN_ENV} to an access token for {url} to call the tools too)"
        )
    return result


ACCESS_TOKEN_ENV = "MCP_DEPLOY_ACCESS_TOKEN"


def environment_token(loaded: LoadedSpec, environment: str) -> str | None:
    """The token the deployment in `environment` expects: for bearer auth the token secret
    (read from its source now); for oauth an access token from `MCP_DEPLOY_ACCESS_TOKEN`, if
    set; else None. `InputError` when a bearer source cannot be read on this machine."""
    from orchestrator.secret_values import read_secrets
    from orchestrator.spec.layers import secret_sources

    spec = loaded.spec
    if spec.auth.mode == "oauth":
        return os.environ.get(ACCESS_TOKEN_ENV) or None
    if spec.auth.mode != "bearer":
        return None
    check_environment_name(spec, environment)
    name = spec.auth.token_secret
    ref, _layer = secret_sources(spec, environment)[name]
    return read_secrets({name: ref}, loaded.root, environment)[name]
