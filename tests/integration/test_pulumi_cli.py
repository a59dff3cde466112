"""The Pulumi engine against a real Pulumi CLI, built from its Go module by
`scripts/build-pulumi-cli` (scripts/test builds it into .tools/pulumi; no registry ships one).

Provider plugins cannot be had here, so the programs in these tests declare no cloud resource:
they export outputs (one of them secret) as the real programs do. What is real: the CLI, the
file state backend, the passphrase secrets provider, stacks (select/init/rm), tags, outputs,
preview/up/destroy of an inline program, the lock another update holds. Every call goes
through a recorder (tests/support/pulumi_standin.py) that keeps its argv, environment and stdin.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pytest

from orchestrator.artifacts import Artifact
from orchestrator.build.store import ArtifactStore
from orchestrator.deploy.flow import request_for
from orchestrator.deploy.request import DeploymentRequest
from orchestrator.environments import resolve
from orchestrator.errors import BusyError, OperationError
from orchestrator.paths import ProjectPaths
from orchestrator.pulumi.engine import PulumiEngine
from orchestrator.spec.loader import load_spec
from tests.conftest import REPO
from tests.support import pulumi_standin
from tests.support.example import example_copy

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

REAL_CLI = REPO / ".tools" / "pulumi" / "bin" / "pulumi"
CANARY = "canary-9b1e77-real-cli"
URL = "https://abc123.lambda-url.eu-west-1.on.aws/mcp"


def _programs(delay: float = 0.0) -> Callable[[str], Any]:
    """A program like the real ones in what reaches the CLI (a secret value in, outputs out)
    but without a cloud resource."""

    def program_for(_target: str) -> Any:
        def program(
            request: DeploymentRequest, secret_values: Mapping[str, str], *, artifact_path: str
        ) -> dict[str, Any]:
            time.sleep(delay)
            token = pulumi.Output.secret(secret_values["MCP_AUTH_TOKEN"])
            return {"url": URL, "token_length": token.apply(len), "artifact": artifact_path}

        return program

    return program_for


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not REAL_CLI.exists():
        pytest.fail(f"no Pulumi CLI at {REAL_CLI}: run scripts/build-pulumi-cli .tools/pulumi")
    root = tmp_path / "recorder"
    pulumi_standin.install_recorder(root, REAL_CLI)
    monkeypatch.setenv("MCP_DEPLOY_PULUMI_ROOT", str(root))
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "the-state-passphrase")
    monkeypatch.setenv("STAGING_MCP_TOKEN", f"{CANARY}-token")
    monkeypatch.setenv("STAGING_TOOLBOX_KEY", f"{CANARY}-key")
    return root


@pytest.fixture
def staging(tmp_path: Path) -> tuple[ProjectPaths, DeploymentRequest]:
    loaded = load_spec(example_copy(tmp_path / "toolbox"))
    paths = ProjectPaths(loaded.root)
    digest, size = ArtifactStore(paths.store).add_bytes(b"PK\x05\x06" + bytes(18))
    artifact = Artifact("lambda-zip", "lambda", digest, size, "inputs", paths.store)
    return paths, request_for(loaded, resolve(loaded, "staging", "lambda"), artifact)


def test_stack_backend_secrets_and_outputs_with_the_real_cli(
    cli: Path, staging: tuple[ProjectPaths, DeploymentRequest]
) -> None:
    paths, request = staging
    engine = PulumiEngine(paths, "toolbox", programs=_programs())
    assert engine.current("staging", "lambda") is None

    changes = engine.plan(request)
    assert changes  # a preview of a stack that does not exist yet
    engine.attach_record({"id": "rec-1", "status": "applying"})
    lines: list[str] = []
    applied = engine.apply(request, lines.append)
    assert applied.url == URL
    assert applied.outputs["token_length"] == "[secret]"
    engine.keep_status("staging", "lambda", "verified")

    # The file backend under the project holds the stack; the secret only encrypted.
    state = next((paths.base / "pulumi" / ".pulumi" / "stacks").rglob("staging.lambda.json"))
    text = state.read_text()
    assert CANARY not in text
    assert "ciphertext" in text
    outputs = json.loads(text)["checkpoint"]["latest"]["resources"][0]["outputs"]
    recorded = json.loads(outputs["mcp_deploy"])
    assert recorded["artifact_digest"] == request.artifact.digest
    assert recorded["record"] == {"id": "rec-1", "status": "applying"}

    # Another runner (no work directory) reads what runs from the backend alone.
    shutil.rmtree(engine.settings("staging", "lambda").work_dir)
    current = PulumiEngine(paths, "toolbox").current("staging", "lambda")
    assert current is not None
    assert (current.url, current.artifact_digest) == (URL, request.artifact.digest)
    assert current.request_hash == request.request_hash
    assert "verified" in current.note

    gone = engine.destroy("staging", "lambda")
    assert gone is not None and gone.url == URL
    assert engine.current("staging", "lambda") is None
    assert not state.exists()

    calls = pulumi_standin.calls(cli)
    assert {"up", "preview", "destroy"} <= {a for c in calls for a in c["argv"]}
    assert CANARY not in json.dumps(calls)  # no secret in any argv, environment or stdin
    assert all(c["stdin"] == "/dev/null" for c in calls)
    assert all("STAGING_MCP_TOKEN" not in c["env"] for c in calls)


def test_a_wrong_passphrase_is_a_clear_failure(
    cli: Path, staging: tuple[ProjectPaths, DeploymentRequest], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths, request = staging
    engine = PulumiEngine(paths, "toolbox", programs=_programs())
    engine.apply(request, lambda _line: None)
    shutil.rmtree(engine.settings("staging", "lambda").work_dir)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "not-the-passphrase")
    with pytest.raises(OperationError) as raised:
        PulumiEngine(paths, "toolbox").current("staging", "lambda")
    assert "incorrect passphrase" in raised.value.render()


def test_a_stack_locked_by_another_update_is_busy(
    cli: Path, staging: tuple[ProjectPaths, DeploymentRequest]
) -> None:
    paths, request = staging
    slow = PulumiEngine(paths, "toolbox", programs=_programs(delay=8))
    PulumiEngine(paths, "toolbox", programs=_programs()).apply(request, lambda _line: None)
    first = threading.Thread(target=slow.apply, args=(request, lambda _line: None))
    first.start()
    try:
        time.sleep(4)  # the first update holds the stack's lock while its program runs
        with pytest.raises(BusyError) as raised:
            PulumiEngine(paths, "toolbox", programs=_programs()).apply(request, lambda _l: None)
    finally:
        first.join()
    assert raised.value.exit_code == 75
    assert "pulumi cancel" in (raised.value.hint or "")


def test_a_program_that_refuses_the_request_says_why(
    cli: Path, staging: tuple[ProjectPaths, DeploymentRequest]
) -> None:
    paths, request = staging

    def refusing(_target: str) -> Any:
        def program(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
            raise OperationError("zip over 50 MB", hint="set targets.lambda.artifact_bucket")

        return program

    with pytest.raises(OperationError) as raised:
        PulumiEngine(paths, "toolbox", programs=refusing).apply(request, lambda _line: None)
    assert raised.value.message == "zip over 50 MB"
    assert raised.value.hint == "set targets.lambda.artifact_bucket"
