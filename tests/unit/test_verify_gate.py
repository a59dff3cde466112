"""`[smoke] verify = true`: verify after the smoke test; its failure is handled like a failed
smoke test (record failed, the previous deployment restored: exit 3; nothing to restore or
--no-rollback: exit 4, a deployment with nothing before it removed). The release itself and
verify are stand-ins here; tests/integration/test_verify.py runs them for real."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.deploy import verify_gate as gate
from orchestrator.deploy.release import Outcome
from orchestrator.deploy.request import ArtifactRef, DeploymentRequest
from orchestrator.errors import GateFailed, RolledBack
from orchestrator.paths import ProjectPaths
from orchestrator.records import DeploymentRecord, RecordStore
from orchestrator.smoke import SmokeResult
from orchestrator.spec.loader import LoadedSpec, load_spec
from orchestrator.verify.conformance import Check, ScenarioResult
from orchestrator.verify.discovery import AuthChain
from orchestrator.verify.report import VerifyReport

SPEC = """\
[server]
name = "demo"
entry = "demo.app:app"

[auth]
mode = "none"

[targets.lambda]
region = "eu-west-1"

[smoke]
verify = true
"""


def request(digest: str = "sha256:" + "b" * 64) -> DeploymentRequest:
    return DeploymentRequest(
        server="demo",
        environment="local",
        engine="local",
        target="lambda",
        artifact=ArtifactRef("lambda-zip", "lambda", digest, 1),
        python="3.11",
        mcp_path="/mcp",
        config={},
        secrets={},
        options={},
        auth={"mode": "none"},
        smoke={"verify": True},
    )


def record(name: str, replaces: str | None, req: DeploymentRequest) -> DeploymentRecord:
    return DeploymentRecord(
        id=name,
        server="demo",
        target="lambda",
        environment="local",
        engine="local",
        artifact_kind="lambda-zip",
        artifact_digest=req.artifact.digest,
        artifact_location=None,
        request_hash="h",
        config_hash="c",
        url="http://127.0.0.1:9/mcp",
        time="2026-12-01T00:00:00Z",
        actor="me",
        git_commit=None,
        status="verified",
        smoke={"ok": True},
        promoted_from=None,
        replaces=replaces,
        request=req.to_dict(),
    )


@dataclass
class FakeEngine:
    running: bool
    kind: str = "local"
    destroyed: list[str] = field(default_factory=list)

    def current(self, environment: str, target: str) -> Any:
        return object() if self.running else None

    def destroy(self, environment: str, target: str) -> None:
        self.destroyed.append(target)


def engine(running: bool) -> Any:
    """A stand-in engine (it has what `release_verified` itself uses)."""
    return FakeEngine(running)


def verify_report(ok: bool) -> VerifyReport:
    status = "passed" if ok else "failed"
    check = Check("ping", "SUCCESS" if ok else "FAILURE", "d", "" if ok else "no pong")
    return VerifyReport(
        url="http://127.0.0.1:9/mcp",
        target="lambda",
        suite={"package": "p", "version": "v", "node": "n"},
        auth=AuthChain("open", "not-oauth", []),
        scenarios=[ScenarioResult("ping", status, [check])],
    )


@pytest.fixture
def loaded(tmp_path: Path, project: Callable[..., Path]) -> LoadedSpec:
    return load_spec(project(SPEC))


@pytest.fixture
def releases(monkeypatch: pytest.MonkeyPatch, loaded: LoadedSpec) -> list[dict[str, Any]]:
    """`release` records its request (as the real one does) and returns an Outcome."""
    calls: list[dict[str, Any]] = []
    store = RecordStore(ProjectPaths(loaded.root).records)

    def fake(
        loaded_: LoadedSpec, engine: Any, req: DeploymentRequest, progress: Any, **kw: Any
    ) -> Outcome:
        calls.append({"digest": req.artifact.digest, **kw})
        previous = store.latest("local", "lambda")
        new = record(f"r{len(calls)}", previous.id if previous else None, req)
        store.write(new)
        return Outcome(new, SmokeResult(url=new.url, ok=True))

    monkeypatch.setattr(gate, "release", fake)
    return calls


def checker(ok: bool) -> Callable[..., VerifyReport]:
    return lambda _loaded, _request, _url: verify_report(ok)


def test_passing_verify_is_kept_in_the_record(loaded: LoadedSpec, releases: Any) -> None:
    outcome = gate.release_verified(
        loaded, engine(False), request(), lambda _s: None, check=checker(True)
    )
    assert outcome.record.status == "verified"
    assert outcome.record.smoke is not None
    assert outcome.record.smoke["verify"]["ok"] is True
    stored = RecordStore(ProjectPaths(loaded.root).records).latest("local", "lambda")
    assert stored is not None and stored.smoke == outcome.record.smoke


def test_failing_verify_rolls_back_to_the_previous(loaded: LoadedSpec, releases: Any) -> None:
    store = RecordStore(ProjectPaths(loaded.root).records)
    old = request("sha256:" + "a" * 64)
    store.write(record("r0", None, old))
    with pytest.raises(RolledBack) as raised:
        gate.release_verified(
            loaded, engine(True), request(), lambda _s: None, check=checker(False)
        )
    assert "failed verify: ping failed: no pong" in raised.value.message
    assert raised.value.exit_code == 3
    assert [call["digest"][:8] for call in releases] == ["sha256:b", "sha256:a"]
    assert releases[1]["action"] == "rollback" and releases[1]["rollback"] is False
    failed = [r for r in store.history("local", "lambda") if r.status == "failed"]
    assert failed and failed[0].smoke is not None and failed[0].smoke["verify"]["ok"] is False


def test_failing_verify_with_nothing_before_removes_it(loaded: LoadedSpec, releases: Any) -> None:
    fake_engine = engine(False)
    with pytest.raises(GateFailed) as raised:
        gate.release_verified(loaded, fake_engine, request(), lambda _s: None, check=checker(False))
    assert not isinstance(raised.value, RolledBack) and raised.value.exit_code == 4
    assert fake_engine.destroyed == ["lambda"]
    assert "the failed deployment was removed" in raised.value.message


def test_no_rollback_leaves_it_running(loaded: LoadedSpec, releases: Any) -> None:
    fake_engine = engine(False)
    with pytest.raises(GateFailed) as raised:
        gate.release_verified(
            loaded, fake_engine, request(), lambda _s: None, rollback=False, check=checker(False)
        )
    assert "left running for inspection" in raised.value.message
    assert fake_engine.destroyed == [] and len(releases) == 1


def test_a_previous_that_fails_its_smoke_test_is_said(
    loaded: LoadedSpec, releases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RecordStore(ProjectPaths(loaded.root).records)
    store.write(record("r0", None, request("sha256:" + "a" * 64)))
    real: Callable[..., Outcome] = vars(gate)["release"]

    def second_fails(*args: Any, **kwargs: Any) -> Outcome:
        if kwargs.get("action") == "rollback":
            raise GateFailed("the lambda deployment in 'local' failed its smoke test: boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(gate, "release", second_fails)
    with pytest.raises(GateFailed) as raised:
        gate.release_verified(
            loaded, engine(True), request(), lambda _s: None, check=checker(False)
        )
    assert not isinstance(raised.value, RolledBack)
    assert "which failed its smoke test" in raised.value.message


def test_the_deploy_flow_takes_the_gate_only_when_asked() -> None:
    source = Path(gate.__file__).parents[1] / "deploy" / "flow.py"
    text = source.read_text()
    assert 'if request.smoke.get("verify"):' in text and "release_verified(" in text
