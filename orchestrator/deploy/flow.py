"""One deploy flow for every environment, whatever its engine:

resolve (once) -> check (before any build) -> artifact (built, cached) -> `DeploymentRequest`
-> engine.apply -> record (status `applied`) -> smoke test over MCP -> record (`verified`).

A failing smoke test stops the new deployment, puts the one before back (rollback: its record
holds its request) and fails with the server's own error. An interrupted deploy leaves the new
deployment running *and* recorded (`unverified`), or the previous one untouched. One lock per
(environment, target) keeps racing deploys apart. The flow knows no target and no engine by
name: engines come from `engine_for(kind)`, targets from the registry.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator.artifacts import Artifact
from orchestrator.deploy.artifact import build_one, place, where_placed
from orchestrator.deploy.engine import (
    Change,
    Deployed,
    Engine,
    HasLogs,
    KeepsRecords,
    OfflinePlan,
    PlansOffline,
    RunsForeground,
    engine_for,
)
from orchestrator.deploy.gate import smoke_request
from orchestrator.deploy.lock import deployment_lock
from orchestrator.deploy.request import ArtifactRef, DeploymentRequest
from orchestrator.environments import (
    Overrides,
    ResolvedEnvironment,
    check_environment_name,
    get_target,
    resolve,
)
from orchestrator.errors import InputError, OperationError, input_error
from orchestrator.paths import ProjectPaths
from orchestrator.processes import deferred_interrupts, last_error
from orchestrator.records import DeploymentRecord, RecordStore, actor, git_commit, now, record_id
from orchestrator.smoke import SmokeResult
from orchestrator.spec.loader import LoadedSpec
from targets import registry

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What a deploy would do: the request it would send and the engine's changes."""

    request: DeploymentRequest
    changes: list[Change]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """A finished deploy: its record, its smoke test and what the user should know."""

    record: DeploymentRecord
    smoke: SmokeResult
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
    artifact: Artifact,
    promoted_from: str | None = None,
) -> DeploymentRequest:
    """The request that deploys `artifact` with `resolved`'s configuration."""
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
        auth=resolved.auth.model_dump(mode="json"),
        smoke=spec.smoke.model_dump(mode="json"),
        promoted_from=promoted_from,
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
    problems = engine.check(environment, resolved.target, resolved.options, secrets)
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
    return Plan(request, engine.plan(request), _guard_warnings(loaded, request))


def _guard_warnings(loaded: LoadedSpec, request: DeploymentRequest) -> list[str]:
    """What a deploy of `request` should say before it goes out (a public endpoint)."""
    from orchestrator.deploy.guards import cloud_warnings

    return cloud_warnings(loaded.spec, request.environment, request.target, request.options)


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
    return request, engine.plan_offline(request), _guard_warnings(loaded, request)


def deploy(
    loaded: LoadedSpec,
    environment: str,
    target: str | None,
    overrides: Overrides,
    progress: Progress,
    port: int | None = None,
) -> Outcome:
    """Deploy (see the module docstring); raises `OperationError` when the deploy fails."""
    engine = environment_engine(loaded, environment, port=port)
    request = _prepare(loaded, engine, environment, target, overrides, progress)
    for warning in _guard_warnings(loaded, request):
        progress(f"{request.target}: warning: {warning}")
    paths = ProjectPaths(loaded.root)
    what = f"{request.server} in '{environment}' on {request.target}"
    with deployment_lock(paths.lock_file(environment, request.target), what, progress):
        return _deploy_locked(loaded, engine, request, progress)


def _deploy_locked(
    loaded: LoadedSpec, engine: Engine, request: DeploymentRequest, progress: Progress
) -> Outcome:
    records = RecordStore(ProjectPaths(loaded.root).records)
    environment, target = request.environment, request.target
    before = engine.current(environment, target)
    previous = records.latest(environment, target) if before is not None else None
    # The smoke test's MCP client takes ~0.8 s to import: done while the engine works.
    threading.Thread(target=_import_smoke_client, daemon=True).start()
    # Recorded before it starts (`applying`), so even a SIGKILL never leaves it unrecorded.
    record = _record(loaded, engine, request, previous)
    records.write(record)
    keeper = engine if isinstance(engine, KeepsRecords) else None
    if keeper is not None:
        keeper.attach_record(record.to_dict())
    applied_record: DeploymentRecord | None = None
    try:
        with deferred_interrupts():  # applied and recorded as such, or neither
            try:
                applied = engine.apply(request, progress)
            except BaseException:
                records.write(replace(record, status="failed"))
                raise
            applied_record = replace(record, url=applied.url, status="applied")
            records.write(applied_record)
        progress(f"{target}: smoke test of {applied.url}")
        host = applied.outputs.get("host")
        result = smoke_request(
            loaded, request, applied.url, host if isinstance(host, str) else None
        )
    except BaseException:
        if applied_record is not None:  # it runs, but was never proven
            records.write(applied_record.with_smoke("unverified", None))
        raise
    record = applied_record
    start = applied.outputs.get("start_seconds")
    if result.first_response_ms is not None and isinstance(start, float):
        result.cold_start_ms = start * 1000 + result.first_response_ms
    if result.ok:
        record = record.with_smoke("verified", result.to_dict())
        records.write(record)
        warnings = _guard_warnings(loaded, request) + _session_warnings(request, result)
        if keeper is not None:
            try:  # the deployment is proven and recorded here: a lost tag is only a warning
                keeper.keep_status(environment, target, "verified")
            except OperationError as untagged:
                warnings.append(f"the stack's status tag was not written: {untagged.message}")
        return Outcome(record, result, warnings)
    records.write(record.with_smoke("failed", result.to_dict()))
    # A long tail to find the server's own error line (a traceback can be long), a short one
    # to show; both with the secret values taken out by the engine.
    log = engine.log_tail(environment, target, 200) if isinstance(engine, HasLogs) else ""
    error = last_error(log)
    log = "".join(log.splitlines(keepends=True)[-20:])
    rolled_back = _roll_back(engine, previous, progress)  # replaces the failed one
    if not rolled_back.startswith("rolled back"):
        engine.destroy(environment, target)
    raise OperationError(
        f"the {target} deployment in '{environment}' failed its smoke test: {result.failure}"
        + (f"\n  the server says: {error}" if error else "")
        + (f"\n  {rolled_back}" if rolled_back else ""),
        hint=result.hint,
        detail=("server log (last lines):\n" + log) if log else None,
    )


def _import_smoke_client() -> None:
    from orchestrator.smoke import CLIENT_MODULES

    for module in CLIENT_MODULES:
        importlib.import_module(module)


def _record(
    loaded: LoadedSpec,
    engine: Engine,
    request: DeploymentRequest,
    previous: DeploymentRecord | None,
) -> DeploymentRecord:
    """The record of `request` about to be applied (status `applying`, no URL yet)."""
    when = now()
    return DeploymentRecord(
        id=record_id(when, request.artifact.digest),
        server=request.server,
        target=request.target,
        environment=request.environment,
        engine=engine.kind,
        artifact_kind=request.artifact.kind,
        artifact_digest=request.artifact.digest,
        artifact_location=request.artifact.location,
        request_hash=request.request_hash,
        config_hash=request.config_hash,
        url="",
        time=when,
        actor=actor(),
        git_commit=git_commit(loaded.root),
        status="applying",
        smoke=None,
        promoted_from=request.promoted_from,
        replaces=previous.id if previous is not None else None,
        request=request.to_dict(),
    )


def _roll_back(engine: Engine, previous: DeploymentRecord | None, progress: Progress) -> str:
    """Put the deployment of `previous` back; what happened, for the error message."""
    if previous is None or not previous.request:
        return ""
    progress(f"{previous.target}: rolling back to {previous.artifact_digest[:19]}")
    if isinstance(engine, KeepsRecords):
        engine.attach_record(previous.to_dict())
    try:
        with deferred_interrupts():
            engine.apply(DeploymentRequest.from_dict(previous.request), progress)
    except (OperationError, InputError) as error:
        return f"could not roll back to the previous deployment ({previous.id}): {error}"
    return f"rolled back: the previous deployment ({previous.id}) runs again"


def _session_warnings(request: DeploymentRequest, result: SmokeResult) -> list[str]:
    """A stateful server on a target that spreads requests over instances works in a smoke
    test and breaks under load: say so."""
    target = registry()[request.target]
    options = target.options_model.model_validate(dict(request.options))
    if not result.session_id or not target.spreads_requests(options):
        return []
    return [
        f"the server keeps MCP sessions (it answered with Mcp-Session-Id), and {target.title} "
        "may send a client's requests to different instances, which do not know the session: "
        "serve stateless HTTP (python SDK: stateless_http=True, json_response=True; TypeScript "
        "SDK: sessionIdGenerator: undefined)"
    ]


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
