"""`[smoke] verify = true`: the conformance suite and the auth discovery chain as part of a
deploy's gate, after the smoke test, with a failure handled as a failed smoke test.

`release_verified` releases the request (`orchestrator.deploy.release`: apply, smoke test,
rollback when the smoke test fails), then verifies the deployment with the environment's own
bearer token (an OAuth deployment: the access token in `MCP_DEPLOY_ACCESS_TOKEN`, else the
discovery chain only, and the report says so). The record keeps the verify summary under
`smoke.verify`. When verify fails: the record is marked `failed`, and the deployment that ran
before is restored by releasing its recorded request again (smoke-tested, action `rollback`)
— `RolledBack` (exit 3); with nothing to restore, or `rollback` False, `GateFailed` (exit 4),
the failed deployment removed when nothing ran before (left running with --no-rollback).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from orchestrator.deploy.engine import Engine, KeepsRecords
from orchestrator.deploy.release import Outcome, release
from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import GateFailed, InputError, OperationError, RolledBack
from orchestrator.paths import ProjectPaths
from orchestrator.records import DeploymentRecord, RecordStore
from orchestrator.spec.loader import LoadedSpec

Progress = Callable[[str], None]


def verify_summary(report: Any) -> dict[str, Any]:
    """What the record keeps of a `VerifyReport`."""
    return {
        "ok": report.ok,
        "status": report.status,
        "counts": report.counts(),
        "failures": report.failure_lines(),
        "auth": report.auth.kind,
        "suite": report.suite,
        "seconds": round(report.seconds, 2),
    }


def verify_deployment(loaded: LoadedSpec, request: DeploymentRequest, url: str) -> Any:
    """The `VerifyReport` of the deployment of `request` at `url`."""
    from orchestrator.deploy.gate import environment_token
    from orchestrator.verify.run import verify

    return verify(
        url,
        token=environment_token(loaded, request.environment),
        target=request.target,
        expect_oauth=request.auth.get("mode") == "oauth",
    )


def release_verified(
    loaded: LoadedSpec,
    engine: Engine,
    request: DeploymentRequest,
    progress: Progress,
    *,
    rollback: bool = True,
    check: Callable[[LoadedSpec, DeploymentRequest, str], Any] = verify_deployment,
) -> Outcome:
    """See the module docstring. `check` runs verify (a seam for tests)."""
    environment, target = request.environment, request.target
    ran_before = engine.current(environment, target) is not None
    outcome = release(loaded, engine, request, progress, rollback=rollback)
    record = outcome.record
    progress(f"{target}: verify (MCP conformance and auth discovery) of {record.url}")
    report = check(loaded, request, record.url)
    records = RecordStore(ProjectPaths(loaded.root).records)
    smoke = {**(record.smoke or {}), "verify": verify_summary(report)}
    if report.ok:
        record = record.with_smoke(record.status, smoke)
        records.write(record)
        note = [f"verify: {report.summary()}"] if report.status == "warning" else []
        return replace(outcome, record=record, warnings=outcome.warnings + note)
    failed = record.with_smoke("failed", smoke)
    records.write(failed)
    _keep_status(engine, failed)
    message = f"the {target} deployment in '{environment}' failed verify: " + "; ".join(
        report.failure_lines()[:5]
    )
    hint = report.hint or f"run: mcp-deploy verify --target {target} --env {environment}"
    if not rollback:
        raise GateFailed(message + "\n  left running for inspection (--no-rollback)", hint=hint)
    previous = records.find(environment, target, record.replaces) if record.replaces else None
    restored, how = _restore(loaded, engine, previous, progress)
    if not restored and not ran_before:
        engine.destroy(environment, target)
        how += "; the failed deployment was removed"
    error_type = RolledBack if restored else GateFailed
    raise error_type(message + f"\n  {how}", hint=hint)


def _restore(
    loaded: LoadedSpec, engine: Engine, previous: DeploymentRecord | None, progress: Progress
) -> tuple[bool, str]:
    if previous is None or not previous.request:
        return False, "no previous deployment to roll back to"
    progress(f"{previous.target}: rolling back to {previous.id} ({previous.artifact_digest[:19]})")
    request = DeploymentRequest.from_dict(previous.request)
    try:
        release(loaded, engine, request, progress, action="rollback", rollback=False)
    except GateFailed as error:
        return False, (
            f"rolled back to the previous deployment ({previous.id}), which failed its smoke "
            f"test: {error.message.splitlines()[0]}"
        )
    except (OperationError, InputError) as error:
        return False, f"could not roll back to the previous deployment ({previous.id}): {error}"
    return True, (
        f"rolled back: the previous deployment ({previous.id}) runs again and passed its smoke test"
    )


def _keep_status(engine: Engine, record: DeploymentRecord) -> None:
    """Tell an engine that keeps records with the deployment that verify failed it."""
    if isinstance(engine, KeepsRecords):
        # the local record says it; the stack's tag is a convenience
        with contextlib.suppress(OperationError):
            engine.keep_status(record.environment, record.target, record.status)
