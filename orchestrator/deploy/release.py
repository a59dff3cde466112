"""One release of a resolved request through an engine, with the smoke test as its gate:

record (`applying`) -> engine.apply -> record (`applied`) -> smoke test over MCP -> record
(`verified`), and when the gate fails: record `failed`, then restore the deployment that ran
before (its record holds its request), smoke-test it again and record the restore (action
`rollback`). `GateFailed` (exit 4) or `RolledBack` (exit 3) say which happened.

An interrupted release leaves the new deployment running *and* recorded (`unverified`), or the
previous one untouched. The caller holds the (environment, target) lock.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from orchestrator.deploy.engine import Engine, HasLogs, KeepsRecords
from orchestrator.deploy.gate import smoke_request
from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import GateFailed, InputError, OperationError, RolledBack
from orchestrator.paths import ProjectPaths
from orchestrator.processes import deferred_interrupts, last_error
from orchestrator.records import DeploymentRecord, RecordStore, actor, git_commit, now, record_id
from orchestrator.smoke import SmokeResult
from orchestrator.spec.loader import LoadedSpec
from targets import registry

Progress = Callable[[str], None]


@dataclass
class Outcome:
    """A finished release: its record, its smoke test and what the user should know."""

    record: DeploymentRecord
    smoke: SmokeResult
    warnings: list[str] = field(default_factory=list)


def guard_warnings(loaded: LoadedSpec, request: DeploymentRequest) -> list[str]:
    """What a deploy of `request` should say before it goes out (a public endpoint)."""
    from orchestrator.deploy.guards import cloud_warnings

    return cloud_warnings(loaded.spec, request.environment, request.target, request.options)


def release(
    loaded: LoadedSpec,
    engine: Engine,
    request: DeploymentRequest,
    progress: Progress,
    *,
    action: str = "deploy",
    rollback: bool = True,
) -> Outcome:
    """Release `request` (see the module docstring). `rollback` False leaves a deployment
    that failed its gate running, for inspection."""
    environment, target = request.environment, request.target
    before = engine.current(environment, target)
    previous = known_record(loaded, engine, environment, target) if before is not None else None
    # The smoke test's MCP client takes ~0.8 s to import: done while the engine works.
    threading.Thread(target=_import_smoke_client, daemon=True).start()
    record, result = _apply_and_check(loaded, engine, request, previous, action, progress)
    if result.ok:
        warnings = guard_warnings(loaded, request) + _session_warnings(request, result)
        untagged = _tag(engine, record)
        return Outcome(record, result, warnings + ([untagged] if untagged else []))
    # A long tail to find the server's own error line (a traceback can be long), a short one
    # to show; both with the secret values taken out by the engine.
    log = engine.log_tail(environment, target, 200) if isinstance(engine, HasLogs) else ""
    error = last_error(log)
    log = "".join(log.splitlines(keepends=True)[-20:])
    message = (
        f"the {target} deployment in '{environment}' failed its smoke test: {result.failure}"
        + (f"\n  the server says: {error}" if error else "")
    )
    detail = ("server log (last lines):\n" + log) if log else None
    if not rollback:
        raise GateFailed(
            message + "\n  left running for inspection (--no-rollback)",
            hint=result.hint,
            detail=detail,
        )
    restored, how = _restore(loaded, engine, record, previous, progress)
    if not restored and before is None:  # nothing ran here before: take the failed one away
        engine.destroy(environment, target)
        how += "; the failed deployment was removed"
    elif not restored and previous is None:
        how = (
            "something ran here before, but no record of it is known on this machine or with "
            "the deployment: the failed deployment was left in place (roll back with "
            "mcp-deploy rollback --to RECORD from a machine that has the records)"
        )
    error_type = RolledBack if restored else GateFailed
    raise error_type(message + f"\n  {how}", hint=result.hint, detail=detail)


def _apply_and_check(
    loaded: LoadedSpec,
    engine: Engine,
    request: DeploymentRequest,
    previous: DeploymentRecord | None,
    action: str,
    progress: Progress,
) -> tuple[DeploymentRecord, SmokeResult]:
    """Record, apply and smoke-test `request`; its final record says how the test went."""
    records = RecordStore(ProjectPaths(loaded.root).records)
    target = request.target
    # Recorded before it starts (`applying`), so even a SIGKILL never leaves it unrecorded.
    record = _record(loaded, engine, request, previous, action)
    records.write(record)
    if isinstance(engine, KeepsRecords):
        engine.attach_record(record.to_dict())
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
    start = applied.outputs.get("start_seconds")
    if result.first_response_ms is not None and isinstance(start, float):
        result.cold_start_ms = start * 1000 + result.first_response_ms
    final = applied_record.with_smoke("verified" if result.ok else "failed", result.to_dict())
    records.write(final)
    return final, result


def known_record(
    loaded: LoadedSpec, engine: Engine, environment: str, target: str
) -> DeploymentRecord | None:
    """The newest record of what was deployed in (environment, target): from this machine's
    record store, else from the deployment itself (an engine that keeps records there: a
    fresh CI runner has no local records)."""
    records = RecordStore(ProjectPaths(loaded.root).records)
    found = records.latest(environment, target)
    if found is not None or not isinstance(engine, KeepsRecords):
        return found
    kept = engine.recorded(environment, target)
    if kept is None or not kept.get("request"):
        return None
    return DeploymentRecord.from_dict(kept)


def _restore(
    loaded: LoadedSpec,
    engine: Engine,
    failed: DeploymentRecord,
    previous: DeploymentRecord | None,
    progress: Progress,
) -> tuple[bool, str]:
    """Deploy `previous`'s request again in place of `failed` and smoke-test it; whether it
    passed, and what happened, for the error message."""
    if previous is None or not previous.request:
        return False, "no previous deployment to roll back to"
    progress(f"{failed.target}: rolling back to {previous.id} ({previous.artifact_digest[:19]})")
    request = DeploymentRequest.from_dict(previous.request)
    try:
        record, result = _apply_and_check(loaded, engine, request, failed, "rollback", progress)
    except (OperationError, InputError) as error:
        return False, f"could not roll back to the previous deployment ({previous.id}): {error}"
    if not result.ok:
        return False, (
            f"rolled back to the previous deployment ({previous.id}), which failed its smoke "
            f"test too: {result.failure}"
        )
    _tag(engine, record)
    return True, (
        f"rolled back: the previous deployment ({previous.id}) runs again and passed its smoke test"
    )


def _tag(engine: Engine, record: DeploymentRecord) -> str:
    """Tell an engine that keeps records where others read them how the gate went; a warning
    when it cannot (the deployment is proven and recorded here already)."""
    if not isinstance(engine, KeepsRecords):
        return ""
    try:
        engine.keep_status(record.environment, record.target, record.status)
    except OperationError as error:
        return f"the stack's status tag was not written: {error.message}"
    return ""


def _import_smoke_client() -> None:
    from orchestrator.smoke import CLIENT_MODULES

    for module in CLIENT_MODULES:
        importlib.import_module(module)


def spec_hash(loaded: LoadedSpec) -> str | None:
    """sha256 of the spec file's bytes (what `status` compares to tell a changed spec)."""
    import hashlib

    try:
        return "sha256:" + hashlib.sha256(loaded.path.read_bytes()).hexdigest()
    except OSError:
        return None


def _record(
    loaded: LoadedSpec,
    engine: Engine,
    request: DeploymentRequest,
    previous: DeploymentRecord | None,
    action: str,
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
        action=action,
        spec_hash=spec_hash(loaded),
    )


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
