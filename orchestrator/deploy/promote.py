"""Promotion: the artifact that passed in one environment, deployed to another by digest,
never rebuilt, with the other environment's config and secrets, through its engine, gated by
its smoke test (`orchestrator.deploy.release`).

`promote(loaded, source, destination, target)`:
1. refuses, with the reason, before anything changes: `destination` declares `promote_from`
   and it is not `source`; `source` has no passing record (for the target, or for any target
   when none is named); the artifact cannot be found;
2. makes the artifact available to `destination` by digest: a local engine runs it from this
   machine's store (which must hold it); a cloud engine takes it from the destination's
   registry, so an image in another repository is copied there by digest (the copy verifies
   it; `orchestrator.oci.copy`) and one never pushed is pushed from the store; a target that
   keeps artifacts in a store of its own (Lambda's artifact bucket) carries it there
   (`CarriesArtifacts`);
3. releases the request `destination` would deploy, with the source's artifact and
   `promoted_from = source`, under the (destination, target) lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from orchestrator.build.store import ArtifactStore, BlobState
from orchestrator.deploy.artifact import place
from orchestrator.deploy.engine import Engine
from orchestrator.deploy.flow import environment_engine, request_for
from orchestrator.deploy.lock import deployment_lock
from orchestrator.deploy.release import Outcome, guard_warnings, release
from orchestrator.deploy.request import ArtifactRef
from orchestrator.environments import (
    Overrides,
    ResolvedEnvironment,
    check_environment_name,
    get_target,
    resolve,
)
from orchestrator.errors import InputError, OperationError, input_error
from orchestrator.paths import ProjectPaths
from orchestrator.records import DeploymentRecord, RecordStore
from orchestrator.spec.loader import LoadedSpec
from targets import registry
from targets.base import CarriesArtifacts, Packager

Progress = Callable[[str], None]


def promote(
    loaded: LoadedSpec,
    source: str,
    destination: str,
    target: str | None,
    overrides: Overrides,
    progress: Progress,
    rollback: bool = True,
) -> list[Outcome]:
    """Promote (see the module docstring); one outcome per target, in order. Raises
    `InputError` for a refusal, `OperationError`/`RolledBack`/`GateFailed` as a deploy does."""
    sources = _passing_records(loaded, source, destination, target)
    outcomes: list[Outcome] = []
    engine = environment_engine(loaded, destination)
    for record in sources:
        resolved = resolve(loaded, destination, record.target, overrides)
        secrets = {name: str(ref) for name, ref in resolved.secrets.items()}
        problems = engine.check(
            destination, record.target, resolved.options, secrets, loaded.spec.server.runtime
        )
        if problems:
            raise InputError(
                [
                    loaded.issue(("targets", record.target, p.option), p.message, p.hint)
                    for p in problems
                ]
            )
        artifact = _available(loaded, engine, record, resolved, progress)
        request = request_for(loaded, resolved, artifact, promoted_from=source)
        for warning in guard_warnings(loaded, request):
            progress(f"{request.target}: warning: {warning}")
        lock = ProjectPaths(loaded.root).lock_file(destination, record.target)
        what = f"{request.server} in '{destination}' on {request.target}"
        progress(
            f"{record.target}: promoting {record.artifact_digest[:19]} from '{source}' "
            f"(record {record.id}) to '{destination}'"
        )
        with deployment_lock(lock, what, progress):
            outcomes.append(
                release(loaded, engine, request, progress, action="promote", rollback=rollback)
            )
    return outcomes


def _passing_records(
    loaded: LoadedSpec, source: str, destination: str, target: str | None
) -> list[DeploymentRecord]:
    """The newest passing record of `source` for `target` (or for every target that has one),
    after the refusals of step 1."""
    spec = loaded.spec
    check_environment_name(spec, source)
    check_environment_name(spec, destination)
    if source == destination:
        raise input_error("--to", f"'{destination}' is the environment promoted from")
    declared = spec.environment(destination).promote_from
    if declared is not None and declared != source:
        raise InputError(
            [
                loaded.issue(
                    ("environments", destination, "promote_from"),
                    f"'{destination}' receives its artifacts from '{declared}' only, not from "
                    f"'{source}'",
                    f"promote --from {declared} --to {destination}, or change promote_from",
                )
            ]
        )
    records = RecordStore(ProjectPaths(loaded.root).records)
    targets = [target] if target is not None else list(registry())
    if target is not None:
        get_target(target)
    found = [r for r in (records.latest_passed(source, t) for t in targets) if r is not None]
    if not found:  # a runner without local records: what the source's deployments keep
        found = _kept_passing(loaded, source, targets)
    if not found:
        which = f"on {target}" if target is not None else "on any target"
        raise input_error(
            "--from",
            f"'{source}' has no deployment that passed its smoke test {which}: nothing to promote",
            f"deploy to it first: mcp-deploy --target {target or 'T'} --env {source}",
        )
    return found


def _kept_passing(loaded: LoadedSpec, source: str, targets: list[str]) -> list[DeploymentRecord]:
    """The passing records `source`'s engine keeps with its deployments (a cloud stack's
    outputs), for the targets the spec deploys there."""
    from orchestrator.deploy.engine import KeepsRecords
    from orchestrator.spec.server_checks import targets_in

    engine = environment_engine(loaded, source)
    if not isinstance(engine, KeepsRecords):
        return []
    declared = set(targets_in(loaded.spec, source))
    kept = [engine.recorded(source, t) for t in targets if t in declared]
    return [
        DeploymentRecord.from_dict(k)
        for k in kept
        if k is not None and k.get("status") == "verified" and k.get("request")
    ]


def _available(
    loaded: LoadedSpec,
    engine: Engine,
    record: DeploymentRecord,
    resolved: ResolvedEnvironment,
    progress: Progress,
) -> ArtifactRef:
    """The record's artifact where `engine` can take it (step 2 of the module docstring)."""
    ref = ArtifactRef(**record.request["artifact"])
    store = ArtifactStore(ProjectPaths(loaded.root).store)
    target = registry()[ref.target]
    if engine.needs_published_artifacts and isinstance(target, CarriesArtifacts):
        source = target.options_model.model_validate(dict(record.request["options"]))
        target.carry_artifact(
            source, resolved.options, resolved.server, ref.digest, store, progress
        )
    in_store = store.check_blob(ref.digest) is BlobState.INTACT
    if not engine.needs_published_artifacts:
        if not in_store:
            raise _not_found(ref, record, "this machine's store")
        return ref
    packager = registry()[ref.target]
    assert isinstance(packager, Packager)
    wanted = packager.destination(resolved.options, resolved.server)
    if wanted is None or (ref.location is not None and _repository(ref.location) == wanted):
        if ref.location is None and not in_store:
            raise _not_found(ref, record, "this machine's store, or a registry")
        return ref
    if ref.location is not None:
        from orchestrator.oci.copy import copy_by_digest
        from orchestrator.oci.reference import Reference

        progress(f"{ref.target}: copying {ref.digest[:19]} to {wanted}")
        location = copy_by_digest(Reference.parse(ref.location), Reference.parse(wanted), progress)
        return replace(ref, location=location)
    if not in_store:
        raise _not_found(ref, record, "this machine's store, or a registry")
    from orchestrator.artifacts import Artifact

    built = Artifact(ref.kind, ref.target, ref.digest, ref.size, "", store.blob_path(ref.digest))
    pushed = place(loaded, built, progress, to=wanted)
    return replace(ref, location=pushed.location)


def _repository(location: str) -> str:
    """`registry/repo` of `registry/repo@sha256:…`."""
    return location.split("@", 1)[0]


def _not_found(ref: ArtifactRef, record: DeploymentRecord, where: str) -> OperationError:
    return OperationError(
        f"artifact {ref.digest} (record {record.id} in '{record.environment}') is not in {where}",
        hint="build it on this machine (mcp-deploy build: the same inputs give the same digest) "
        "or push it where the environment can pull it (build --push)",
    )
