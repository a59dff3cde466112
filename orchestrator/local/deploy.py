"""`deploy --env local`, `run`, `status`, `destroy --env local` and `smoke --target --env`.

The flow of a local deploy: resolve the `local` environment → build (or reuse) the target's
artifact → read secret values from their `env:`/`file:` sources → replace any running local
deployment of that target (keeping its port, so the URL stays the same) → start the artifact in
the target's emulation → remember it (state file) → smoke-test it over MCP → write a deployment
record. A failing smoke test stops the deployment and fails the deploy with the server's log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator import naming, processes
from orchestrator.environments import Overrides, ResolvedEnvironment, resolve
from orchestrator.errors import InputError, OperationError, input_error
from orchestrator.local.secret_values import read_secrets
from orchestrator.local.state import LocalDeployment, LocalState
from orchestrator.records import DeploymentRecord, RecordStore, config_hash, git_commit, now, who
from orchestrator.smoke import SmokeResult, smoke
from orchestrator.spec.loader import LoadedSpec
from targets import registry
from targets.base import LocalLaunch, LocalRuntime, RunsLocally

Progress = Callable[[str], None]


def local_state(loaded: LoadedSpec) -> LocalState:
    return LocalState(loaded.root / ".mcp-deploy" / "local")


def runner_for(target: str) -> LocalRuntime:
    """The target's local runtime; `InputError` when it has none."""
    found = registry()[target]
    if not isinstance(found, RunsLocally):
        runnable = [name for name, t in registry().items() if isinstance(t, RunsLocally)]
        raise input_error(
            "--target",
            f"{found.title} artifacts cannot run on this machine",
            "local runs exist for: " + ", ".join(runnable),
        )
    return found.local_runtime()


@dataclass(frozen=True)
class Prepared:
    """A launch ready to start, with what it was resolved from (values stay in `launch`)."""

    resolved: ResolvedEnvironment
    runner: LocalRuntime
    launch: LocalLaunch
    token: str | None


def prepare(
    loaded: LoadedSpec,
    target: str | None,
    overrides: Overrides,
    progress: Progress,
    port: int = 0,
) -> Prepared:
    """Resolve `local`, check this machine can run the artifact, read the secrets (a missing
    one fails before anything is built), build the artifact."""
    from orchestrator.build.pipeline import build

    resolved = resolve(loaded, naming.LOCAL_ENV, target, overrides)
    runner = runner_for(resolved.target)
    problem = runner.problem(resolved.options)
    if problem is not None:
        where = ("targets", resolved.target, problem.option)
        raise InputError([loaded.issue(where, problem.message, problem.hint)])
    secrets = read_secrets(resolved.secrets, loaded.root, naming.LOCAL_ENV)
    (artifact,) = build(loaded, resolved.target, progress)
    spec = loaded.spec
    launch = LocalLaunch(
        server=resolved.server,
        environment=naming.LOCAL_ENV,
        python=spec.server.python,
        artifact=artifact,
        options=resolved.options,
        mcp_path=spec.server.path,
        variables=dict(resolved.config),
        secrets=secrets,
        state_dir=local_state(loaded).directory(resolved.target),
        port=port,
    )
    token = secrets.get(spec.auth.token_secret) if spec.auth.mode == "bearer" else None
    return Prepared(resolved, runner, launch, token)


def smoke_launch(loaded: LoadedSpec, url: str, token: str | None) -> SmokeResult:
    """The spec's smoke test against `url`."""
    settings = loaded.spec.smoke
    return smoke(
        url,
        token=token,
        tool=settings.tool,
        arguments=settings.arguments,
        expect=settings.expect,
        timeout=settings.timeout,
    )


def deploy_local(
    loaded: LoadedSpec,
    target: str | None,
    overrides: Overrides,
    progress: Progress,
    port: int | None = None,
) -> tuple[DeploymentRecord, SmokeResult]:
    """Deploy to `local` (see the module docstring); raises `OperationError` on failure."""
    state = local_state(loaded)
    resolved_target = resolve(loaded, naming.LOCAL_ENV, target, overrides).target
    previous = state.load(resolved_target)
    if port is None:
        port = previous.port if previous is not None else 0
    prepared = prepare(loaded, resolved_target, overrides, progress, port)
    if previous is not None:
        progress(f"{resolved_target}: stopping the previous local deployment")
        _stop(prepared.runner, previous, state)
    launch = prepared.launch
    progress(f"{resolved_target}: starting {launch.artifact.digest[:19]} locally")
    starting = time.perf_counter()
    handle = prepared.runner.start_background(launch)
    started = time.perf_counter()
    state.save(
        LocalDeployment(
            server=launch.server,
            target=resolved_target,
            environment=naming.LOCAL_ENV,
            url=handle.url,
            artifact_digest=launch.artifact.digest,
            started=now(),
            handle=dict(handle.data),
        )
    )
    progress(f"{resolved_target}: smoke test of {handle.url}")
    result = smoke_launch(loaded, handle.url, prepared.token)
    if result.first_response_ms is not None:
        result.cold_start_ms = (started - starting) * 1000 + result.first_response_ms
    if not result.ok:
        log = prepared.runner.log_tail(handle, 20)
        prepared.runner.stop(handle)
        state.remove(resolved_target)
        error = processes.last_error(log)
        raise OperationError(
            f"the local {resolved_target} deployment failed its smoke test: {result.failure}"
            + (f"\n  the server says: {error}" if error else ""),
            hint=result.hint,
            detail=("server log (last lines):\n" + log) if log else None,
        )
    record = DeploymentRecord(
        server=launch.server,
        target=resolved_target,
        environment=naming.LOCAL_ENV,
        artifact_kind=launch.artifact.kind,
        artifact_digest=launch.artifact.digest,
        config_hash=config_hash(prepared.resolved),
        url=handle.url,
        time=now(),
        who=who(),
        git_commit=git_commit(loaded.root),
        smoke=result.to_dict(),
    )
    RecordStore.for_project(loaded).write(record)
    return record, result


def _stop(runner: LocalRuntime, deployment: LocalDeployment, state: LocalState) -> None:
    if runner.alive(deployment.local_handle):
        runner.stop(deployment.local_handle)
    state.remove(deployment.target)


@dataclass(frozen=True)
class LocalStatus:
    deployment: LocalDeployment
    running: bool


def status(loaded: LoadedSpec) -> list[LocalStatus]:
    """Every local deployment of this project; the ones found gone are forgotten (reported
    once with `running` False)."""
    state = local_state(loaded)
    report: list[LocalStatus] = []
    for deployment in state.all():
        running = runner_for(deployment.target).alive(deployment.local_handle)
        if not running:
            state.remove(deployment.target)
        report.append(LocalStatus(deployment, running))
    return report


def destroy_local(loaded: LoadedSpec, target: str | None) -> list[LocalDeployment]:
    """Stop the local deployments (of `target`, or all); return what was running."""
    state = local_state(loaded)
    stopped: list[LocalDeployment] = []
    for deployment in state.all():
        if target is not None and deployment.target != target:
            continue
        runner = runner_for(deployment.target)
        if runner.alive(deployment.local_handle):
            runner.stop(deployment.local_handle)
            stopped.append(deployment)
        state.remove(deployment.target)
    return stopped


def endpoint(loaded: LoadedSpec, target: str, environment: str) -> str:
    """The URL of `target` in `environment`: the running local deployment, else the latest
    deployment record."""
    if environment == naming.LOCAL_ENV:
        deployment = local_state(loaded).load(target)
        if deployment is not None and runner_for(target).alive(deployment.local_handle):
            return deployment.url
    record = RecordStore.for_project(loaded).latest(environment, target)
    if record is None or environment == naming.LOCAL_ENV:
        raise input_error(
            "--env",
            f"nothing is deployed to '{environment}' on {target}",
            f"run: mcp-deploy deploy --target {target} --env {environment}",
        )
    return record.url


def environment_token(loaded: LoadedSpec, environment: str) -> str | None:
    """The bearer token `environment` expects (read from its local source), None without
    bearer auth. `InputError` when the source cannot be read here."""
    from orchestrator.environments import check_environment_name, secret_sources

    spec = loaded.spec
    if spec.auth.mode != "bearer":
        return None
    check_environment_name(spec, environment)
    name = spec.auth.token_secret
    ref, _layer = secret_sources(spec, environment)[name]
    return read_secrets({name: ref}, loaded.root, environment)[name]


def log_tail(loaded: LoadedSpec, target: str) -> str:
    deployment = local_state(loaded).load(target)
    if deployment is None:
        return ""
    return runner_for(target).log_tail(deployment.local_handle)


def running(loaded: LoadedSpec, target: str | None) -> tuple[LocalRuntime, LocalDeployment]:
    """The running local deployment of `target` (default: the only one); `InputError`
    when there is none or the choice is ambiguous."""
    live = [entry.deployment for entry in status(loaded) if entry.running]
    if target is not None:
        live = [deployment for deployment in live if deployment.target == target]
    if len(live) != 1:
        targets = ", ".join(deployment.target for deployment in live)
        raise input_error(
            "--target",
            f"{len(live) or 'no'} local deployments are running" + (f": {targets}" if live else ""),
            "pass --target" if live else "run: mcp-deploy deploy --env local",
        )
    return runner_for(live[0].target), live[0]
