"""The Lambda shim reads its secrets at cold start without boto3 (`mcp_deploy_secrets`).

- The example deploys to Lambda-local, passes smoke and proves its secret arrived, with the
  runtime's import log (PYTHONPROFILEIMPORTTIME) showing the SDK-free reader and no boto3.
- The example's zip under the Lambda emulation, its secrets served by moto's server (through a
  throttling relay) or by the emulation's stand-in: a read that succeeds, also after
  throttling that stops; a missing secret, throttling that never stops and wrong credentials
  fail the init with one `SecretsError` line per failed secret in the function's log (the
  variable, the ARN, AWS's error code, a hint; never a value, no frames of the reader).
Nothing but 127.0.0.1 is reached.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import boto3  # type: ignore[import-untyped]
import httpx2
import pytest

from orchestrator.paths import cache_root
from targets.aws_lambda.emulator import LambdaEmulator, LambdaFunction
from targets.aws_lambda.local_runtime import runtime_python
from targets.aws_lambda.secrets_local import Credentials, SecretsManagerStub, secret_arn
from tests.integration.test_example_servers import mcp_session
from tests.integration.test_s3_copy import moto_server
from tests.support.cli import mcp_deploy
from tests.support.example import example_copy
from tests.support.mcp_wire import INITIALIZE
from tests.support.secrets_relay import Relay

pytestmark = pytest.mark.integration

REGION = "eu-west-1"
TOKEN = "shim-token-canary-4c1e77"
API_KEY = "shim-apikey-canary-9d20b3"
ACCEPT = {"accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def example_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's Lambda zip, built as `mcp-deploy build` builds it."""
    spec = example_copy(tmp_path_factory.mktemp("shim") / "toolbox")
    done = mcp_deploy(spec, {}, "build", "--target", "lambda", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return Path(json.loads(done.stdout)["artifacts"][0]["path"])


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto") / "server.log") as url:
        yield url


@pytest.fixture
def stored(moto: str) -> dict[str, str]:
    """The example's two secrets in moto under fresh names: variable name → full ARN."""
    client = boto3.client(
        "secretsmanager",
        endpoint_url=moto,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    prefix = uuid.uuid4().hex[:8]
    values = {"MCP_AUTH_TOKEN": TOKEN, "TOOLBOX_API_KEY": API_KEY}
    return {
        name: client.create_secret(Name=f"{prefix}/{name}", SecretString=value)["ARN"]
        for name, value in values.items()
    }


def cold_start(
    tmp_path: Path, zip_path: Path, arns: Mapping[str, str], endpoint: str, **variables: str
) -> tuple[httpx2.Response, str]:
    """Start the zip under the Lambda emulation with `MCP_DEPLOY_SECRET_ARNS` = `arns` read
    from `endpoint`; (the answer to an initialize with the right token, the function's log)."""
    function = LambdaFunction(
        name="toolbox-secrets",
        zip_path=zip_path,
        python="3.11",
        memory=512,
        timeout=10,
        ephemeral_storage=512,
        region=REGION,
        variables={
            "MCP_DEPLOY_SECRET_ARNS": json.dumps(dict(arns)),
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
            **variables,
        },
    )
    log = tmp_path / "function.log"
    with log.open("ab") as sink:
        emulator = LambdaEmulator(
            function,
            {},
            runtime_python=runtime_python("3.11"),
            task_cache=cache_root() / "lambda-local" / "test-tasks",
            log=sink,
        ).start()
        try:
            headers = dict(ACCEPT, authorization=f"Bearer {TOKEN}")
            url = emulator.url + "/mcp"
            answer = httpx2.post(url, json=INITIALIZE, headers=headers, timeout=60)
            deadline = time.monotonic() + 10
            while "REPORT" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            emulator.stop()
    return answer, log.read_text(errors="replace")


def assert_init_error(answer: httpx2.Response, log: str, lines: list[str]) -> None:
    """The init failed with exactly `lines` as its SecretsError, and nothing else said more."""
    assert answer.status_code == 502, answer.text
    assert "[ERROR] SecretsError: " + "\n".join(lines) in log.replace("\r", "\n"), log
    assert "Error Type: SecretsError" in log, log
    for canary in (TOKEN, API_KEY):
        assert canary not in log
    # Lambda's own traceback (from the import of the handler module) and nothing more: no
    # frame of the reader, no chained exception.
    assert "mcp_deploy_secrets" not in log and "During handling" not in log, log


def test_the_example_reads_its_secrets_without_boto3(tmp_path: Path) -> None:
    """Deployed to Lambda-local, its secrets served by the emulation's stand-in: smoke passes,
    the secret arrived, and the runtime imported the SDK-free reader and no boto3."""
    spec = example_copy(tmp_path / "toolbox")
    text = spec.read_text()
    spec.write_text(text.replace("[config]\n", '[config]\nPYTHONPROFILEIMPORTTIME = "1"\n', 1))
    secrets = {"TOOLBOX_LOCAL_TOKEN": TOKEN, "TOOLBOX_LOCAL_API_KEY": API_KEY}
    done = mcp_deploy(spec, secrets, "deploy", "--target", "lambda", "--env", "local", "--json")
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        record = json.loads(done.stdout)["record"]
        assert record["smoke"]["ok"] is True
        seen = mcp_session(record["url"], [("secret_fingerprint", {})], token=TOKEN)
        assert seen["results"][0]["configured"] is True
        logs = mcp_deploy(spec, {}, "logs", "--target", "lambda", "-n", "5000")
        assert logs.returncode == 0, logs.stderr
        imported = {
            line.rsplit("|", 1)[1].strip()
            for line in logs.stdout.splitlines()
            if line.startswith("import time:") and line.count("|") == 2
        }
        assert {"mcp_deploy_secrets", "mcp_deploy_secrets_http", "mcp_deploy_gate"} <= imported
        assert not {name for name in imported if name.split(".")[0] in ("boto3", "botocore")}
    finally:
        mcp_deploy(spec, {}, "destroy", "--env", "local", "--target", "lambda")


def test_secrets_read_from_moto(
    tmp_path: Path, example_zip: Path, moto: str, stored: dict[str, str]
) -> None:
    answer, log = cold_start(tmp_path, example_zip, stored, moto)
    assert answer.status_code == 200, answer.text + log
    assert answer.json()["result"]["serverInfo"]["name"] == "toolbox"


def test_a_missing_secret_fails_the_init_clearly(
    tmp_path: Path, example_zip: Path, moto: str, stored: dict[str, str]
) -> None:
    missing = stored["TOOLBOX_API_KEY"].replace("/TOOLBOX_API_KEY-", "/NOT_THERE-")
    arns = {**stored, "TOOLBOX_API_KEY": missing}
    answer, log = cold_start(tmp_path, example_zip, arns, moto)
    assert_init_error(
        answer,
        log,
        [
            f"cannot read secret TOOLBOX_API_KEY ({missing}) from Secrets Manager: "
            "ResourceNotFoundException: Secrets Manager can't find the specified secret. "
            "(hint: no such secret (or no such version) in this account and region: check "
            "the ARN)"
        ],
    )


def test_throttling_that_stops_is_waited_out(
    tmp_path: Path, example_zip: Path, moto: str, stored: dict[str, str]
) -> None:
    relay = Relay(moto, faults=["throttle", "throttle"])
    with relay as endpoint:
        answer, log = cold_start(tmp_path, example_zip, stored, endpoint)
    assert answer.status_code == 200, answer.text + log
    assert sorted(action for _, action in relay.seen) == ["pass"] * 2 + ["throttle"] * 4


def test_throttling_that_never_stops_fails_the_init_clearly(
    tmp_path: Path, example_zip: Path, moto: str, stored: dict[str, str]
) -> None:
    relay = Relay(moto, faults=["throttle"] * 10)
    with relay as endpoint:
        answer, log = cold_start(tmp_path, example_zip, stored, endpoint)
    assert_init_error(
        answer,
        log,
        [
            f"cannot read secret {name} ({stored[name]}) from Secrets Manager: "
            "ThrottlingException: Rate exceeded"
            for name in sorted(stored)
        ],
    )
    assert len(relay.seen) == 2 * 3  # the SDKs' three attempts per secret


def test_wrong_credentials_fail_the_init_clearly(tmp_path: Path, example_zip: Path) -> None:
    """The emulation's stand-in checks the session token, as Secrets Manager checks it."""
    credentials = Credentials.generate()
    arns = {name: secret_arn(REGION, "toolbox-secrets", name) for name in ("MCP_AUTH_TOKEN",)}
    stub = SecretsManagerStub({arns["MCP_AUTH_TOKEN"]: TOKEN}, credentials).start()
    try:
        wrong = {**credentials.environment(), "AWS_SESSION_TOKEN": "not-the-session-token"}
        answer, log = cold_start(tmp_path, example_zip, arns, stub.endpoint, **wrong)
        right = credentials.environment()
        (tmp_path / "again").mkdir()
        good, good_log = cold_start(tmp_path / "again", example_zip, arns, stub.endpoint, **right)
    finally:
        stub.stop()
    assert_init_error(
        answer,
        log,
        [
            f"cannot read secret MCP_AUTH_TOKEN ({arns['MCP_AUTH_TOKEN']}) from Secrets Manager: "
            "UnrecognizedClientException: The security token included in the request is "
            "invalid. (hint: the credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / "
            "AWS_SESSION_TOKEN were refused)"
        ],
    )
    assert good.status_code == 200, good.text + good_log
