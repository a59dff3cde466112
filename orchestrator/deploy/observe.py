"""What runs now: every deployment as its engine sees it (`status`), one deployment's URL and
log tail (`smoke --target`), and its log (`logs`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from orchestrator.deploy.engine import Deployed, HasLogs
from orchestrator.deploy.flow import environment_engine
from orchestrator.environments import get_target
from orchestrator.errors import InputError, input_error
from orchestrator.paths import ProjectPaths
from orchestrator.records import DeploymentRecord, RecordStore
from orchestrator.spec.loader import LoadedSpec
from orchestrator.spec.server_checks import targets_in
from targets import registry


@dataclass(frozen=True)
class Status:
    """One deployment as its engine sees it now, with the record of what runs and what
    drifted since it was deployed: `spec` (the spec file changed), `config` (what the
    environment would configure now differs: config, secret references, options, auth);
    None when it cannot be told (an old record, an environment that no longer resolves)."""

    deployed: Deployed
    record: DeploymentRecord | None
    drift: dict[str, bool | None] = field(default_factory=dict)


def status(loaded: LoadedSpec, environment: str | None = None) -> list[Status]:
    """The deployments of every environment whose engine this version has (or of one), checked
    live; the ones found gone are reported once with `running` False, then forgotten."""
    spec = loaded.spec
    records = RecordStore(ProjectPaths(loaded.root).records)
    names = [environment] if environment is not None else spec.environment_names()
    report: list[Status] = []
    for name in names:
        try:
            engine = environment_engine(loaded, name)
        except InputError:
            if environment is not None:
                raise
            continue
        # a cloud is asked only about the targets the spec declares (each is a CLI call);
        # this machine about every target (an emulation may run without its state file)
        targets = list(registry()) if spec.is_local(name) else list(targets_in(spec, name))
        try:
            found = [engine.current(name, target) for target in targets]
        except InputError:  # e.g. no Pulumi CLI here: skip that environment unless asked
            if environment is not None:
                raise
            continue
        for target, deployed in zip(targets, found, strict=True):
            if deployed is None:
                continue
            if not deployed.running:
                engine.forget(name, target)
            record = _record_of(records, deployed)
            report.append(Status(deployed, record, _drift(loaded, record)))
    return report


def _record_of(records: RecordStore, deployed: Deployed) -> DeploymentRecord | None:
    """The newest record of what runs (same request), else the newest that ran."""
    history = records.history(deployed.environment, deployed.target)
    same = [r for r in history if deployed.request_hash and r.request_hash == deployed.request_hash]
    if same:
        return same[-1]
    return records.latest(deployed.environment, deployed.target)


def _drift(loaded: LoadedSpec, record: DeploymentRecord | None) -> dict[str, bool | None]:
    """What changed since `record` was deployed (see `Status`)."""
    from orchestrator.deploy.flow import request_for
    from orchestrator.deploy.release import spec_hash
    from orchestrator.deploy.request import ArtifactRef
    from orchestrator.environments import resolve

    if record is None:
        return {"spec": None, "config": None}
    spec = None if record.spec_hash is None else record.spec_hash != spec_hash(loaded)
    try:
        resolved = resolve(loaded, record.environment, record.target)
        artifact = ArtifactRef(**record.request["artifact"])
        now = request_for(loaded, resolved, artifact).config_hash
    except (InputError, KeyError, TypeError):
        return {"spec": spec, "config": None}
    return {"spec": spec, "config": now != record.config_hash}


def endpoint(loaded: LoadedSpec, target: str, environment: str) -> tuple[Deployed, str]:
    """`target`'s running deployment in `environment` and its log tail; `InputError` when
    nothing is deployed there."""
    get_target(target)
    engine = environment_engine(loaded, environment)
    deployed = engine.current(environment, target)
    if deployed is None or not deployed.running:
        raise input_error(
            "--env",
            f"nothing is deployed to '{environment}' on {target}",
            f"run: mcp-deploy --target {target} --env {environment}",
        )
    log = engine.log_tail(environment, target) if isinstance(engine, HasLogs) else ""
    return deployed, log


def logs(
    loaded: LoadedSpec, environment: str, target: str | None, lines: int, follow: bool
) -> Iterator[str]:
    """The log of the running deployment of `target` in `environment` (default target: the
    only one running there): its tail, then, with `follow`, new text until it stops."""
    engine = environment_engine(loaded, environment)
    live = [entry.deployed for entry in status(loaded, environment) if entry.deployed.running]
    if target is not None:
        live = [deployed for deployed in live if deployed.target == target]
    if len(live) != 1:
        targets = ", ".join(deployed.target for deployed in live)
        raise input_error(
            "--target",
            f"{len(live) or 'no'} deployments are running in '{environment}'"
            + (f": {targets}" if live else ""),
            "pass --target" if live else f"run: mcp-deploy --target T --env {environment}",
        )
    if not isinstance(engine, HasLogs):
        raise input_error("--env", f"the engine of '{environment}' keeps no log here")
    chosen = live[0].target
    yield engine.log_tail(environment, chosen, lines)
    if follow:
        yield from engine.follow_log(environment, chosen)
