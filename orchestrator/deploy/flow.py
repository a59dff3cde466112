"""One deploy flow for every environment, whatever its engine:

resolve (once) -> check (before any build) -> artifact (built, cached, placed where the engine
takes it) -> `DeploymentRequest` -> release (`orchestrator.deploy.release`: record, apply,
smoke test as the gate, rollback when it fails).

One lock per (environment, target) keeps racing deploys apart. The flow knows no target and
no engine by name: engines come from `engine_for(kind)`, targets from the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.artifacts import Artifact
from orchestrator.deploy.artifact import build_one, place, where_placed
from orchestrator.deploy.engine import (
    Change,
    Deployed,
    Engine,
    OfflinePlan,
    PlansOffline,
    RunsForeground,
    engine_for,
)
from orchestrator.deploy.lock import deployment_lock
from orchestrator.deploy.release import Outcome, guard_warnings, release
from orchestrator.deploy.request import ArtifactRef, DeploymentRequest
from orchestrator.environments import (
    Overrides,
    ResolvedEnvironment,
    check_environment_name,
    get_target,
    resolve,
)
from orchestrator.errors import InputError, input_error
from orchestrator.paths import ProjectPaths
from orchestrator.spec.loader import LoadedSpec
from targets import registry

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What a deploy would do: the request it would send and the engine's changes."""

    request: DeploymentRequest
    changes: list[Change]
    warnings: list[str] = field(default_factory=list)


def environment_engine(loaded: LoadedSpec, environment: str, **settings: Any) -> Engine:
    """The engine of `environment`'s kind (`InputError` for an unknown environment, or a kind
    this version has no engine for)."""
    spec = loaded.spec
    check_environment_name(spec, environment)
    section = spec.environment(environment)
    return engine_for(
        spec.environment_kind(environment),
        ProjectPaths(loaded.root),
        mcp_path=spec.server.path,
        server=spec.server.name,
        backend=section.backend,
        secrets_provider=section.secrets_provider,
        **settings,
    )


def request_for(
    loaded: LoadedSpec,
    resolved: ResolvedEnvironment,
    artifact: Artifact | ArtifactRef,
    promoted_from: str | None = None,
) -> DeploymentRequest:
    """The request that deploys `artifact` (built here, or named by a record) with
    `resolved`'s configuration."""
    spec = loaded.spec
    return DeploymentRequest(
        server=resolved.server,
        environment=resolved.environment,
        engine=spec.environment_kind(resolved.environment),
        target=resolved.target,
        artifact=ArtifactRef(
            kind=artifact.kind,
            target=artifact.target,
            digest=artifact.digest,
            size=artifact.size,
            location=artifact.location,
        ),
        python=spec.server.python,
        mcp_path=spec.server.path,
        config=dict(resolved.config),
        secrets={name: str(ref) for name, ref in resolved.secrets.items()},
        options=resolved.options.model_dump(mode="json"),
        auth=resolved.auth.request_view(),
        # `verify` only when set, so requests of specs without it hash as they did before it
        smoke=spec.smoke.model_dump(mode="json", exclude={"verify"})
        | ({"verify": True} if spec.smoke.verify else {}),
        promoted_from=promoted_from,
        runtime=spec.server.runtime,
        runtime_version=spec.server.node if spec.server.runtime == "node" else "",
    )


def _prepare(
    loaded: LoadedSpec,
    engine: Engine,
    environment: str,
    target: str | None,
    overrides: Overrides,
    progress: Progress,
) -> DeploymentRequest:
    """Resolve once, let the engine check (before building), build or reuse the artifact."""
    resolved = resolve(loaded, environment, target, overrides)
    secrets = {name: str(ref) for name, ref in resolved.secrets.items()}
    problems = engine.check(
        environment, resolved.target, resolved.options, secrets, loaded.spec.server.runtime
    )
    if problems:
        raise InputError(
            [
                loaded.issue(("targets", resolved.target, p.option), p.message, p.hint)
                for p in problems
            ]
        )
    artifact = build_one(loaded, resolved.target, progress)
    if engine.needs_published_artifacts:
        artifact = place(loaded, artifact, progress)
    return request_for(loaded, resolved, artifact)


def plan(
    loaded: LoadedSpec,
    environment: str,
    target: str | None,
    overrides: Overrides,
    progress: Progress,
) -> Plan:
    """The request a deploy would send and what its engine would change; changes nothing
    deployed (the artifact is built when the store does not hold it yet)."""
    engine = environment_engine(loaded, environment)
    request = _prepare(loaded, engine, environment, target, overrides, progress)
    return Plan(request, engine.plan(request), guard_warnings(loaded, request))


def plan_offline(
    loaded: LoadedSpec,
    environment: str,
    target: str | None,
    overrides: Overrides,
    progress: Progress,
) -> tuple[DeploymentRequest, OfflinePlan, list[str]]:
    """The request a deploy to the cloud environment `environment` would send, the resources
    its engine would declare (Pulumi: the program under the mock runtime: no CLI, no
    credentials, no secret value read, nothing pushed) and the guard rails' warnings. The
    artifact is built when the store lacks it."""
    engine = environment_engine(loaded, environment)
    if not isinstance(engine, PlansOffline):
        raise input_error(
            "--offline",
            f"'{environment}' is a local environment: nothing of it is in a cloud",
            f"plan it without --offline: mcp-deploy plan --env {environment}",
        )
    resolved = resolve(loaded, environment, target, overrides)
    artifact = where_placed(loaded, build_one(loaded, resolved.target, progress))
    request = request_for(loaded, resolved, artifact)
    return request, engine.plan_offline(request), guard_warnings(loaded, request)


def deploy(
    loaded: LoadedSpec,
    environment: str,
    target: str | None,
    overrides: Overrides,
    progress: Progress,
    port: int | None = None,
    rollback: bool = True,
) -> Outcome:
    """Deploy (see the module docstring); raises `OperationError` when the deploy fails,
    `RolledBack`/`GateFailed` when it fails its smoke test, or `verify` when the spec makes it
    part of the gate (`[smoke] verify = true`; `rollback` False: left running)."""
    engine = environment_engine(loaded, environment, port=port)
    request = _prepare(loaded, engine, environment, target, overrides, progress)
    for warning in guard_warnings(loaded, request):
        progress(f"{request.target}: warning: {warning}")
    paths = ProjectPaths(loaded.root)
    what = f"{request.server} in '{environment}' on {request.target}"
    with deployment_lock(paths.lock_file(environment, request.target), what, progress):
        if request.smoke.get("verify"):  # [smoke] verify = true: verify joins the gate
            from orchestrator.deploy.verify_gate import release_verified

            return release_verified(loaded, engine, request, progress, rollback=rollback)
        return release(loaded, engine, request, progress, rollback=rollback)


def destroy(loaded: LoadedSpec, environment: str, target: str | None) -> list[Deployed]:
    """Remove the deployments of `environment` (of `target`, or every target); return what was
    running."""
    engine = environment_engine(loaded, environment)
    if target is not None:
        get_target(target)
    paths = ProjectPaths(loaded.root)
    stopped: list[Deployed] = []
    for name in [target] if target is not None else list(registry()):
        what = f"{loaded.spec.server.name} in '{environment}' on {name}"
        with deployment_lock(paths.lock_file(environment, name), what, lambda _step: None):
            gone = engine.destroy(environment, name)
        if gone is not None and gone.running:
            stopped.append(gone)
    return stopped


def run_foreground(
    loaded: LoadedSpec,
    environment: str,
    target: str | None,
    overrides: Overrides,
    progress: Progress,
    port: int,
    ready: Callable[[str, DeploymentRequest], None],
) -> None:
    """Run the artifact attached to the terminal in a local-kind `environment` until Ctrl-C;
    `ready(url, request)` once it serves. Nothing is recorded."""
    engine = environment_engine(loaded, environment, port=port)
    if not isinstance(engine, RunsForeground):
        raise input_error(
            "--env",
            f"'{environment}' deploys to a cloud; run needs an environment of kind local",
        )
    request = _prepare(loaded, engine, environment, target, overrides, progress)
    engine.run_foreground(request, lambda url: ready(url, request))
