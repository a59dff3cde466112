"""The pieces of the `local` environment that need no runtime: secret values from local sources,
deployment records, local state, process identity, the Secrets Manager stand-in, and the CLI's
answers to input it cannot act on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator import processes
from orchestrator.deploy.artifact import build_artifacts  # noqa: F401 (import check)
from orchestrator.deploy.request import DeploymentRequest
from orchestrator.environments import resolve
from orchestrator.errors import InputError
from orchestrator.local.state import LocalDeployment, LocalState
from orchestrator.paths import ProjectPaths
from orchestrator.records import DeploymentRecord, RecordStore, record_id
from orchestrator.secret_refs import SecretRef
from orchestrator.secret_values import read_secrets
from orchestrator.spec.loader import load_spec
from targets.aws_lambda.secrets_local import Credentials, SecretsManagerStub
from targets.base import host_architecture
from tests.conftest import EXAMPLE_SPEC, MINIMAL, CliResult

Run = Callable[..., CliResult]
CANARY = "unit-secret-canary-0c4f"


# -- secret values -----------------------------------------------------------------------------


def test_secrets_are_read_from_env_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FROM_ENV", CANARY)
    (tmp_path / "token.txt").write_text("file-value\n")
    values = read_secrets(
        {"A": SecretRef("env", "FROM_ENV"), "B": SecretRef("file", "token.txt")}, tmp_path, "local"
    )
    assert values == {"A": CANARY, "B": "file-value"}


def test_every_unreadable_secret_is_named_without_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(InputError) as caught:
        read_secrets(
            {
                "A": SecretRef("env", "NOT_SET_ANYWHERE"),
                "B": SecretRef("file", "missing.txt"),
                "C": SecretRef("file", "empty.txt"),
                "D": SecretRef("aws-sm", "arn:aws:secretsmanager:eu-west-1:1:secret:x"),
            },
            tmp_path,
            "local",
        )
    issues = caught.value.issues
    assert [issue.where for issue in issues] == [f"environments.local.secrets.{n}" for n in "ABCD"]
    assert "NOT_SET_ANYWHERE is not set" in issues[0].message
    assert "export NOT_SET_ANYWHERE=" in (issues[0].hint or "")
    assert "missing.txt" in issues[1].message and "is empty" in issues[2].message
    assert "cannot be read on this machine" in issues[3].message


# -- records and state -------------------------------------------------------------------------


def record(
    digest: str, time: str, url: str = "http://127.0.0.1:1/mcp", status: str = "verified"
) -> DeploymentRecord:
    return DeploymentRecord(
        id=record_id(time, digest),
        server="toolbox",
        target="lambda",
        environment="local",
        engine="local",
        artifact_kind="lambda-zip",
        artifact_digest=digest,
        artifact_location=None,
        request_hash="sha256:" + "1" * 64,
        config_hash="sha256:" + "0" * 64,
        url=url,
        time=time,
        actor="me@here",
        git_commit=None,
        status=status,  # type: ignore[arg-type]
        smoke={"ok": True},
        promoted_from=None,
        replaces=None,
        request={},
    )


def test_record_store_keeps_history_in_time_order(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    older = record("sha256:" + "a" * 64, "2026-11-24T01:00:00.000000Z")
    newer = record("sha256:" + "b" * 64, "2026-11-24T02:00:00.000000Z")
    store.write(newer)
    store.write(older)
    assert store.history("local", "lambda") == [older, newer]
    assert store.latest("local", "lambda") == newer
    assert store.latest("staging", "lambda") is None


def test_a_record_is_rewritten_in_place_and_failed_attempts_are_not_latest(
    tmp_path: Path,
) -> None:
    store = RecordStore(tmp_path)
    good = record("sha256:" + "a" * 64, "2026-11-24T01:00:00.000000Z")
    bad = record("sha256:" + "b" * 64, "2026-11-24T02:00:00.000000Z", status="applied")
    store.write(good)
    store.write(bad)
    store.write(bad.with_smoke("failed", {"ok": False}))
    assert [r.status for r in store.history("local", "lambda")] == ["verified", "failed"]
    assert store.latest("local", "lambda") == good
    assert not list((tmp_path / "local" / "lambda").glob(".*"))  # no partial files left


def test_config_hash_covers_config_and_secret_references_not_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestrator.artifacts import Artifact
    from orchestrator.deploy.flow import request_for

    loaded = load_spec(EXAMPLE_SPEC)
    artifact = Artifact("lambda-zip", "lambda", "sha256:" + "a" * 64, 1, "x", Path("/nowhere"))

    def request(environment: str) -> DeploymentRequest:
        return request_for(loaded, resolve(loaded, environment, "lambda"), artifact)

    local = request("local")
    monkeypatch.setenv("TOOLBOX_LOCAL_TOKEN", CANARY)
    assert request("local").config_hash == local.config_hash
    assert request("local").request_hash == local.request_hash
    assert request("staging").config_hash != local.config_hash
    assert CANARY not in json.dumps(local.to_dict())
    assert DeploymentRequest.from_dict(json.loads(json.dumps(local.to_dict()))) == local


def test_local_state_round_trip(tmp_path: Path) -> None:
    state = LocalState(ProjectPaths(tmp_path))
    deployment = LocalDeployment(
        server="toolbox",
        target="cloudrun",
        environment="ci",
        url="http://127.0.0.1:8080/mcp",
        artifact_digest="sha256:" + "c" * 64,
        request_hash="sha256:" + "d" * 64,
        started="2026-11-24T01:00:00.000000Z",
        handle={"container": "abc"},
    )
    state.save(deployment)
    assert state.load("ci", "cloudrun") == deployment and state.all() == [deployment]
    assert state.load("local", "cloudrun") is None
    assert deployment.port == 8080 and deployment.to_dict()["port"] == 8080
    state.remove("ci", "cloudrun")
    assert state.load("ci", "cloudrun") is None and state.all() == []


# -- processes ---------------------------------------------------------------------------------


def test_a_process_is_known_by_pid_and_start_time() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = processes.start_time(child.pid)
    assert started is not None
    assert processes.alive(child.pid, started)
    assert not processes.alive(child.pid, str(int(started) + 1))  # a reused pid
    child.kill()
    child.wait()
    assert not processes.alive(child.pid, started)


def test_stop_group_ends_the_whole_group() -> None:
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "time.sleep(60)",
        ],
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while len(processes.live_members(leader.pid)) < 2:  # the leader has started its child
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = processes.start_time(leader.pid)
    assert started is not None
    assert processes.stop_group(leader.pid, started, grace=2)
    assert processes.live_members(leader.pid) == []


def test_tail_and_last_error(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert processes.tail(log, 2) == "line 98\nline 99\n"
    assert processes.tail(tmp_path / "missing.log") == ""
    text = (
        "Traceback (most recent call last):\n  File x\nModuleNotFoundError: No module named 'x'\n"
    )
    assert processes.last_error(text) == "ModuleNotFoundError: No module named 'x'"
    assert processes.last_error("[ERROR] Runtime.ImportModuleError: y\n") == (
        "[ERROR] Runtime.ImportModuleError: y"
    )
    assert processes.last_error("all good\n") is None


# -- Secrets Manager stand-in ------------------------------------------------------------------


def test_secrets_manager_stand_in_answers_only_its_caller() -> None:
    credentials = Credentials.generate()
    arn = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:fn/KEY-local"
    stub = SecretsManagerStub({arn: CANARY}, credentials)
    body = json.dumps({"SecretId": arn}).encode()
    target = "secretsmanager.GetSecretValue"
    status, answer = stub.answer(target, "wrong-token", body)
    assert status == 403 and CANARY not in json.dumps(answer)
    status, answer = stub.answer(target, credentials.session_token, b'{"SecretId": "other"}')
    assert status == 400 and answer["__type"] == "ResourceNotFoundException"
    status, answer = stub.answer("secretsmanager.ListSecrets", credentials.session_token, body)
    assert status == 400
    status, answer = stub.answer(target, credentials.session_token, body)
    assert status == 200 and answer["SecretString"] == CANARY and answer["ARN"] == arn


# -- CLI input errors --------------------------------------------------------------------------


def test_a_python_worker_is_refused_locally_before_building(
    run_cli: Run, project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_AUTH_TOKEN", "token")
    spec = project(MINIMAL + "\n[targets.workers]\n")
    result = run_cli("--spec", str(spec), "deploy", "--target", "workers")
    assert result.code == 2, result.err
    assert "Python Workers cannot start offline" in result.err, result.err
    assert not (spec.parent / ".mcp-deploy" / "store").exists()


def test_a_missing_secret_fails_before_building(
    run_cli: Run, project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MCP_AUTH_TOKEN", raising=False)
    spec = project(MINIMAL + f'\n[targets.lambda]\narch = "{host_architecture()}"\n')
    result = run_cli("--spec", str(spec), "deploy", "--target", "lambda")
    assert result.code == 2
    assert "environments.local.secrets.MCP_AUTH_TOKEN" in result.err
    assert not (spec.parent / ".mcp-deploy" / "store").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["smoke"],
        ["smoke", "http://127.0.0.1:1/mcp", "--target", "lambda"],
        ["smoke", "http://127.0.0.1:1/mcp", "--env", "local"],
        ["smoke", "--target", "lambda", "--env", "staging"],
        ["destroy", "--env", "staging"],
        ["destroy", "--env", "local", "--target", "lamda"],
    ],
)
def test_smoke_and_destroy_usage_errors(run_cli: Run, args: list[str]) -> None:
    result = run_cli("--spec", str(EXAMPLE_SPEC), *args)
    assert result.code == 2, (result.out, result.err)
    assert result.err.startswith("error:"), result.err


def test_status_with_nothing_deployed(run_cli: Run, project: Callable[..., Path]) -> None:
    result = run_cli("--spec", str(project(MINIMAL)), "status", "--json")
    assert result.code == 0 and result.json() == {"ok": True, "deployments": []}


def test_a_zip_for_another_cpu_is_refused_before_building(
    run_cli: Run, project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_AUTH_TOKEN", CANARY)
    other = "arm64" if host_architecture() == "x86_64" else "x86_64"
    spec = project(MINIMAL + f'\n[targets.lambda]\narch = "{other}"\n')
    result = run_cli("--spec", str(spec), "deploy", "--target", "lambda")
    assert result.code == 2, result.err
    assert "targets.lambda.arch" in result.err and f'arch = "{host_architecture()}"' in result.err
    assert not (spec.parent / ".mcp-deploy" / "store").exists()


def test_a_flag_cannot_change_what_the_artifact_is(run_cli: Run) -> None:
    result = run_cli(
        "--spec", str(EXAMPLE_SPEC), "config", "explain", "--target", "lambda", "--set", "arch=x"
    )
    assert result.code == 2 and "shapes the artifact" in result.err
