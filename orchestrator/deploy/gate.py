"""The smoke test as a deploy's gate: the request's MCP tool call against a deployment, with
the environment's own bearer token (read from its source at that moment)."""

from __future__ import annotations

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
    return smoke(
        url,
        token=environment_token(loaded, request.environment),
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


def environment_token(loaded: LoadedSpec, environment: str) -> str | None:
    """The bearer token `environment` expects (read from its source now), None without bearer
    auth. `InputError` when the source cannot be read on this machine."""
    from orchestrator.secret_values import read_secrets
    from orchestrator.spec.layers import secret_sources

    spec = loaded.spec
    if spec.auth.mode != "bearer":
        return None
    check_environment_name(spec, environment)
    name = spec.auth.token_secret
    ref, _layer = secret_sources(spec, environment)[name]
    return read_secrets({name: ref}, loaded.root, environment)[name]
