"""The records of an environment as history, and rollback on demand: a recorded deployment
deployed again, by its request, through the environment's engine and the smoke-test gate."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.deploy.flow import environment_engine
from orchestrator.deploy.lock import deployment_lock
from orchestrator.deploy.release import Outcome, release
from orchestrator.deploy.request import DeploymentRequest
from orchestrator.environments import check_environment_name, get_target
from orchestrator.errors import input_error
from orchestrator.paths import ProjectPaths
from orchestrator.records import DeploymentRecord, RecordStore
from orchestrator.spec.loader import LoadedSpec
from targets import registry

Progress = Callable[[str], None]
# Records that ran: a rollback may return to them (a `failed` one failed its gate).
RUNNABLE = ("verified", "unverified", "applied")


def history(
    loaded: LoadedSpec, environment: str | None = None, target: str | None = None
) -> list[DeploymentRecord]:
    """Every record of the project (of `environment`, of `target`), newest first."""
    store = RecordStore(ProjectPaths(loaded.root).records)
    if environment is not None:
        check_environment_name(loaded.spec, environment)
    if target is not None:
        get_target(target)
    environments = [environment] if environment is not None else store.environments()
    found = [
        record
        for env in environments
        for name in ([target] if target is not None else list(registry()))
        for record in store.history(env, name)
    ]
    return sorted(found, key=lambda record: record.time, reverse=True)


def rollback(
    loaded: LoadedSpec,
    environment: str,
    target: str | None,
    to: str | None,
    progress: Progress,
) -> Outcome:
    """Deploy again the record `to` (an id, or a unique prefix of one) of `target` in
    `environment`, or by default the newest one before what runs now that passed its smoke
    test and deployed something else; gated like any deploy (a failed gate restores what ran).
    `InputError` when there is no such record."""
    check_environment_name(loaded.spec, environment)
    store = RecordStore(ProjectPaths(loaded.root).records)
    name = target or _only_target(store, environment)
    get_target(name)
    chosen = _chosen(store, environment, name, to)
    request = DeploymentRequest.from_dict(chosen.request)
    engine = environment_engine(loaded, environment)
    lock = ProjectPaths(loaded.root).lock_file(environment, name)
    progress(f"{name}: rolling '{environment}' back to {chosen.id} ({chosen.artifact_digest[:19]})")
    with deployment_lock(lock, f"{request.server} in '{environment}' on {name}", progress):
        return release(loaded, engine, request, progress, action="rollback")


def _only_target(store: RecordStore, environment: str) -> str:
    names = [name for name in registry() if store.history(environment, name)]
    if len(names) != 1:
        raise input_error(
            "--target",
            f"'{environment}' has records for {len(names) or 'no'} targets"
            + (f": {', '.join(names)}" if names else ""),
            "pass --target" if names else "nothing was deployed there yet",
        )
    return names[0]


def _chosen(store: RecordStore, environment: str, target: str, to: str | None) -> DeploymentRecord:
    records = store.history(environment, target)
    if to is not None:
        chosen = store.find(environment, target, to)
        if chosen is None:
            raise input_error(
                "--to",
                f"no single record of {target} in '{environment}' has the id {to!r}",
                f"see mcp-deploy history --env {environment} --target {target}",
            )
        if chosen.status not in RUNNABLE or not chosen.request:
            why = "failed its smoke test" if chosen.status == "failed" else "never ran"
            raise input_error(
                "--to",
                f"record {chosen.id} {why}",
                "roll back to a record that passed its smoke test (see mcp-deploy history)",
            )
        return chosen
    current = store.latest(environment, target)
    earlier = [
        record
        for record in records
        if record.passed
        and record.request
        and current is not None
        and record.time < current.time
        and record.request_hash != current.request_hash
    ]
    if not earlier:
        raise input_error(
            "--env",
            f"{target} in '{environment}' has no earlier deployment that passed its smoke test",
            f"see mcp-deploy history --env {environment} --target {target}",
        )
    return earlier[-1]
