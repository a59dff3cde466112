"""The Pulumi engine through its one seam, with a recording stand-in `pulumi` executable.

Every CLI call's argv, environment and stdin are recorded (`tests/support/pulumi_standin.py`):
no secret value may appear in any of them, the CLI's environment holds only what it needs, and
the failure paths (no CLI, no passphrase, a locked stack, a failed update) end in clear errors.
The stand-in never runs a program: the programs are tested under the mock runtime
(tests/programs) and against a real CLI built from source (tests/integration).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.artifacts import Artifact
from orchestrator.build.store import ArtifactStore
from orchestrator.deploy.flow import request_for
from orchestrator.deploy.request import DeploymentRequest
from orchestrator.environments import resolve
from orchestrator.errors import BusyError, OperationError
from orchestrator.paths import ProjectPaths
from orchestrator.pulumi.engine import PulumiEngine
from orchestrator.pulumi.failures import cli_words
from orchestrator.spec.loader import load_spec
from tests.support import pulumi_standin
from tests.support.example import example_copy

CANARY = "canary-51d0c3-never-in-the-cli"
URN = "urn:pulumi:staging.lambda::mcp-deploy-toolbox::{type}::{name}"


def _event(op: str, typ: str, name: str) -> dict[str, Any]:
    urn = URN.format(type=typ, name=name)
    return {"resourcePreEvent": {"metadata": {"op": op, "urn": urn, "type": typ, "provider": ""}}}


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "pulumi"
    pulumi_standin.install(root)
    monkeypatch.setenv("MCP_DEPLOY_PULUMI_ROOT", str(root))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "state-passphrase")
    monkeypatch.setenv("STAGING_MCP_TOKEN", f"{CANARY}-token")
    monkeypatch.setenv("STAGING_TOOLBOX_KEY", f"{CANARY}-key")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("GOOGLE_CREDENTIALS", "gcp-credentials-not-for-lambda")
    monkeypatch.setenv("UNRELATED_SECRET", "nothing-to-do-with-pulumi")
    return root


def _scenario(root: Path, **scenario: Any) -> None:
    (root / "scenario.json").write_text(json.dumps(scenario))


@pytest.fixture
def staging(tmp_path: Path) -> tuple[PulumiEngine, DeploymentRequest]:
    spec = example_copy(tmp_path / "toolbox")
    loaded = load_spec(spec)
    paths = ProjectPaths(loaded.root)
    digest, size = ArtifactStore(paths.store).add_bytes(b"PK\x05\x06" + bytes(18))
    artifact = Artifact("lambda-zip", "lambda", digest, size, "inputs", paths.store)
    request = request_for(loaded, resolve(loaded, "staging", "lambda"), artifact)
    return PulumiEngine(paths, "toolbox"), request


def _all_text(calls: list[dict[str, Any]]) -> str:
    return json.dumps(calls)


def test_a_deploy_gives_the_cli_no_secret_and_only_the_environment_it_needs(
    standin: Path, staging: tuple[PulumiEngine, DeploymentRequest]
) -> None:
    engine, request = staging
    url = "https://abc123.lambda-url.eu-west-1.on.aws/mcp"
    fn = "aws:lambda/function:Function"
    _scenario(
        standin,
        outputs={"url": url, "function_name": "toolbox-staging", "mcp_deploy": "{}"},
        events=[
            _event("create", fn, "toolbox-staging"),
            _event("same", "aws:iam/role:Role", "toolbox-staging-lambda"),
            {
                "diagnosticEvent": {
                    "message": f"provider said: bad value {CANARY}-token\n",
                    "color": "never",
                    "severity": "warning",
                    "urn": URN.format(type=fn, name="toolbox-staging"),
                }
            },
        ],
    )
    lines: list[str] = []
    engine.attach_record({"id": "20261201T000000Z-abc", "status": "applying"})
    applied = engine.apply(request, lines.append)

    assert applied.url == url
    assert applied.outputs["host"] == "abc123.lambda-url.eu-west-1.on.aws"
    assert "lambda: + aws:lambda/function:Function toolbox-staging (create)" in lines
    assert not any("Role" in line for line in lines)  # unchanged resources are not news
    assert (
        "lambda: warning toolbox-staging: provider said: bad value [redacted:MCP_AUTH_TOKEN]"
        in lines
    )
    assert CANARY not in "\n".join(lines)

    calls = pulumi_standin.calls(standin)
    argv = [call["argv"] for call in calls]
    assert ["version"] in argv
    select = next(a for a in argv if "select" in a)
    assert select[-5:] == [
        "--stack",
        "staging.lambda",
        "--create",
        "--secrets-provider",
        "passphrase",
    ] or ("--stack" in select and "staging.lambda" in select)
    up = next(a for a in argv if "up" in a)
    assert "--yes" in up and "--refresh" in up
    assert any(a[:2] == ["stack", "output"] or a[1:3] == ["stack", "output"] for a in argv)
    assert CANARY not in _all_text(calls)  # not in argv, env, stdin or cwd of any call
    for call in calls:
        env = call["env"]
        assert call["stdin"] == "/dev/null"
        assert env["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE"  # the Lambda provider's credentials
        assert env["PULUMI_CONFIG_PASSPHRASE"] == "state-passphrase"
        for withheld in ("GOOGLE_CREDENTIALS", "UNRELATED_SECRET", "STAGING_MCP_TOKEN"):
            assert withheld not in env
        if call["argv"] != ["version"]:
            assert Path(call["cwd"]) == engine.settings("staging", "lambda").work_dir
    # the work directory holds project settings, never a value
    for path in engine.settings("staging", "lambda").work_dir.rglob("*"):
        if path.is_file():
            assert CANARY not in path.read_text(errors="replace")


def test_plan_is_a_preview_listing_the_changes(
    standin: Path, staging: tuple[PulumiEngine, DeploymentRequest]
) -> None:
    engine, request = staging
    _scenario(
        standin,
        events=[
            _event("create", "aws:lambda/function:Function", "toolbox-staging"),
            _event("same", "aws:cloudwatch/logGroup:LogGroup", "toolbox-staging-logs"),
        ],
    )
    changes = engine.plan(request)
    assert [(c.action, c.what) for c in changes] == [
        ("create", "aws:lambda/function:Function toolbox-staging")
    ]
    argv = [call["argv"] for call in pulumi_standin.calls(standin)]
    assert any("preview" in a and "--refresh" in a for a in argv)
    assert not any("up" in a for a in argv)


def test_current_reads_the_stack_and_destroy_removes_it(
    standin: Path, staging: tuple[PulumiEngine, DeploymentRequest]
) -> None:
    engine, request = staging
    assert engine.current("staging", "lambda") is None  # no stack yet: nothing created
    assert not any("--create" in c["argv"] for c in pulumi_standin.calls(standin))
    deployment = json.dumps(
        {
            "artifact_digest": request.artifact.digest,
            "request_hash": request.request_hash,
            "deployed_at": "2026-12-01T00:00:00Z",
        }
    )
    _scenario(standin, outputs={"url": "https://x.lambda-url.on.aws/mcp", "mcp_deploy": deployment})
    engine.apply(request, lambda _line: None)
    engine.keep_status("staging", "lambda", "verified")

    current = engine.current("staging", "lambda")
    assert current is not None
    assert current.artifact_digest == request.artifact.digest
    assert current.request_hash == request.request_hash
    assert "verified" in current.note
    tag = next(c["argv"] for c in pulumi_standin.calls(standin) if "tag" in c["argv"])
    assert tag[-4:] == ["mcp-deploy:status", "verified", "--stack", "staging.lambda"]

    gone = engine.destroy("staging", "lambda")
    assert gone is not None and gone.url == "https://x.lambda-url.on.aws/mcp"
    argv = [c["argv"] for c in pulumi_standin.calls(standin)]
    assert any("destroy" in a and "--yes" in a for a in argv)
    assert any("rm" in a and "staging.lambda" in a for a in argv)
    assert engine.current("staging", "lambda") is None


def test_a_locked_stack_is_busy_not_broken(
    standin: Path, staging: tuple[PulumiEngine, DeploymentRequest]
) -> None:
    engine, request = staging
    _scenario(
        standin,
        fail={
            "up": {
                "stderr": "error: the stack is currently locked by 1 lock(s). Either wait for "
                "the other process(es) to end or delete the lock file with `pulumi cancel`.\n"
            }
        },
    )
    with pytest.raises(BusyError) as raised:
        engine.apply(request, lambda _line: None)
    assert raised.value.exit_code == 75
    assert "locked by another update" in raised.value.message


def test_a_failed_update_shows_the_cli_diagnostics_without_secrets(
    standin: Path, staging: tuple[PulumiEngine, DeploymentRequest]
) -> None:
    engine, request = staging
    stdout = (
        "Updating (staging.lambda):\n  @ updating....\n"
        "Diagnostics:\n  aws:lambda:Function (toolbox-staging):\n"
        f"    error: creating Lambda Function: InvalidParameterValueException: {CANARY}-key\n"
        "Resources:\n    1 errored\n"
    )
    _scenario(standin, fail={"up": {"stdout": stdout, "stderr": ""}})
    with pytest.raises(OperationError) as raised:
        engine.apply(request, lambda _line: None)
    rendered = raised.value.render()
    assert "InvalidParameterValueException: [redacted:TOOLBOX_API_KEY]" in rendered
    assert CANARY not in rendered
    assert "@ updating" not in rendered


def test_no_cli_stops_a_cloud_deploy_before_anything_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    spec = example_copy(tmp_path / "toolbox")
    monkeypatch.setenv("MCP_DEPLOY_PULUMI_ROOT", str(tmp_path / "no-pulumi-here"))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "x")
    result = run_cli("--spec", str(spec), "--target", "lambda", "--env", "staging")
    assert result.code == 2, result.err
    assert "no Pulumi CLI found" in result.err
    assert "plan --offline" in result.err
    assert not (tmp_path / "toolbox" / ".mcp-deploy" / "store").exists()  # nothing built


def test_a_passphrase_backend_without_a_passphrase_is_refused_before_building(
    tmp_path: Path, standin: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    spec = example_copy(tmp_path / "toolbox")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    result = run_cli("--spec", str(spec), "--target", "lambda", "--env", "staging")
    assert result.code == 2, result.err
    assert "environments.staging.secrets_provider" in result.err
    assert "PULUMI_CONFIG_PASSPHRASE" in result.err
    assert pulumi_standin.calls(standin) == []


def test_cli_words_keep_the_diagnostics() -> None:
    text = (
        " code: 255\n stdout: Updating\n  @ updating....\nDiagnostics:\n  error: boom\n"
        "Resources:\n  1 errored\n stderr: "
    )
    assert cli_words(text) == "error: boom"


def test_unknown_backends_and_secrets_providers_are_refused_by_validate(
    project: Any, run_cli: Any
) -> None:
    spec = project(
        """
        [server]
        name = "demo"
        entry = "demo.app:app"

        [secrets.MCP_AUTH_TOKEN]

        [environments.staging]
        backend = "ftp://state"
        secrets_provider = "rot13"
        """
    )
    result = run_cli("--spec", str(spec), "validate")
    assert result.code == 2
    assert "environments.staging.backend" in result.err
    assert "environments.staging.secrets_provider" in result.err


def test_the_state_backend_gets_its_own_credentials(
    standin: Path, staging: tuple[PulumiEngine, DeploymentRequest]
) -> None:
    engine, request = staging
    # a Lambda stack whose state is in Google Cloud Storage: the CLI needs both clouds
    on_gcs = PulumiEngine(engine.paths, "toolbox", backend="gs://acme-state/mcp")
    _scenario(standin, outputs={"url": "https://x.lambda-url.on.aws/mcp"})
    on_gcs.apply(request, lambda _line: None)
    for call in pulumi_standin.calls(standin):
        assert call["env"]["GOOGLE_CREDENTIALS"] == "gcp-credentials-not-for-lambda"
        assert call["env"]["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE"
        assert "UNRELATED_SECRET" not in call["env"]
    select = next(c for c in pulumi_standin.calls(standin) if "init" in c["argv"])
    assert (Path(select["cwd"]) / "Pulumi.yaml").read_text().count("gs://acme-state/mcp") == 1


def test_a_cli_that_does_not_run_is_an_error_not_a_traceback(
    standin: Path, staging: tuple[PulumiEngine, DeploymentRequest]
) -> None:
    engine, request = staging
    (standin / "bin" / "pulumi").write_text("#!/bin/sh\necho 'broken install' >&2\nexit 3\n")
    with pytest.raises(OperationError) as raised:
        engine.apply(request, lambda _line: None)
    assert "the Pulumi CLI does not run" in raised.value.message


def test_a_stack_whose_deployment_output_is_not_ours_reads_as_nothing_deployed(
    standin: Path, staging: tuple[PulumiEngine, DeploymentRequest]
) -> None:
    engine, request = staging
    _scenario(standin, outputs={"url": "https://x.lambda-url.on.aws/mcp", "mcp_deploy": "not {"})
    engine.apply(request, lambda _line: None)
    assert engine.current("staging", "lambda") is None
    assert engine.recorded("staging", "lambda") is None
