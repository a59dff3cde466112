"""The local Lambda keeps Lambda's contract, checked with small hand-written functions under
the real runtime client: Lambda's environment variables, a read-only task root with a writable
/tmp, Function URL events in and responses out (status, headers, cookies, Host), warm reuse of
the execution environment, timeouts enforced (the environment is replaced), handler errors,
runtime exits and init failures answered 502 and reported in a CloudWatch-style log, 6 MB
payload limit."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from orchestrator.paths import cache_root
from targets.aws_lambda.emulator import LambdaEmulator, LambdaFunction
from targets.aws_lambda.local_runtime import runtime_python

pytestmark = pytest.mark.integration

FUNCTION = """
import json, os, time

def probe(path):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        return "written"
    except OSError as error:
        return type(error).__name__

def handler(event, context):
    path = event["rawPath"]
    if path == "/slow":
        time.sleep(30)
    if path == "/raise":
        raise ValueError("boom-from-handler")
    if path == "/exit":
        os._exit(3)
    body = {
        "pid": os.getpid(),
        "env": {k: os.environ.get(k) for k in (
            "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION",
            "AWS_LAMBDA_FUNCTION_VERSION", "_HANDLER", "LAMBDA_TASK_ROOT", "GREETING",
            "AWS_EXECUTION_ENV")},
        "task_root_write": probe(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "x")),
        "tmp_write": probe("/tmp/x"),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "host": event["headers"].get("host"),
        "method": event["requestContext"]["http"]["method"],
        "query": event.get("queryStringParameters"),
        "body": event.get("body"),
    }
    return {"statusCode": 201, "headers": {"x-fn": "yes"}, "cookies": ["a=1", "b=2"],
            "body": json.dumps(body)}
"""


def wait_for_log(log: Path, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while text not in (content := log.read_text()):
        assert time.monotonic() < deadline, content
        time.sleep(0.01)
    return content


def function_zip(directory: Path, source: str) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fn.py", source)
    data = buffer.getvalue()
    path = directory / f"{hashlib.sha256(data).hexdigest()}.zip"
    path.write_bytes(data)
    return path


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[LambdaEmulator, Path]]:
    yield from _emulator(tmp_path, FUNCTION)


def _emulator(tmp_path: Path, source: str) -> Iterator[tuple[LambdaEmulator, Path]]:
    function = LambdaFunction(
        name="probe-local",
        zip_path=function_zip(tmp_path, source),
        python="3.11",
        memory=256,
        timeout=2,
        ephemeral_storage=512,
        region="eu-west-1",
        variables={"GREETING": "Hi"},
        handler="fn.handler",
    )
    log = tmp_path / "function.log"
    with log.open("ab") as sink:
        running = LambdaEmulator(
            function,
            {},
            runtime_python=runtime_python("3.11"),
            task_cache=cache_root() / "lambda-local" / "test-tasks",
            log=sink,
        ).start()
        try:
            yield running, log
        finally:
            running.stop()


def test_lambda_environment_filesystem_and_function_url_mapping(
    emulator: tuple[LambdaEmulator, Path],
) -> None:
    running, log = emulator
    response = httpx2.post(running.url + "/anything?x=1&x=2", content=b'{"k": 1}', timeout=30)
    assert response.status_code == 201
    assert response.headers["x-fn"] == "yes"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    seen = response.json()
    assert seen["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "probe-local"
    assert seen["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert seen["env"]["AWS_REGION"] == "eu-west-1"
    assert seen["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert seen["env"]["_HANDLER"] == "fn.handler"
    assert seen["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert seen["env"]["GREETING"] == "Hi"
    assert seen["task_root_write"] == "OSError"  # read-only file system
    assert seen["tmp_write"] == "written"
    assert 0 < seen["remaining_ms"] <= 2000
    assert seen["host"] == "localfunctionurl0000000000000000.lambda-url.eu-west-1.on.aws"
    assert seen["method"] == "POST" and seen["query"] == {"x": "1,2"}
    assert seen["body"] == '{"k": 1}'
    text = wait_for_log(log, "Max Memory Used:")  # REPORT is written after the response
    assert "INIT_START" in text and f"START RequestId: {seen['request_id']}" in text
    assert "Init Duration:" in text


def test_warm_invocations_reuse_the_environment(emulator: tuple[LambdaEmulator, Path]) -> None:
    running, _log = emulator
    pids = {httpx2.get(running.url + "/", timeout=30).json()["pid"] for _ in range(3)}
    assert len(pids) == 1


def test_timeout_is_enforced_and_the_environment_replaced(
    emulator: tuple[LambdaEmulator, Path],
) -> None:
    running, log = emulator
    before = httpx2.get(running.url + "/", timeout=30).json()["pid"]
    slow = httpx2.get(running.url + "/slow", timeout=30)
    assert slow.status_code == 502
    assert "Task timed out after 2.00 seconds" in log.read_text()
    after = httpx2.get(running.url + "/", timeout=30).json()["pid"]
    assert after != before


def test_handler_error_and_runtime_exit(emulator: tuple[LambdaEmulator, Path]) -> None:
    running, log = emulator
    before = httpx2.get(running.url + "/", timeout=30).json()["pid"]
    failed = httpx2.get(running.url + "/raise", timeout=30)
    assert failed.status_code == 502 and failed.json() == {"Message": "Internal Server Error"}
    assert "boom-from-handler" in log.read_text()
    assert httpx2.get(running.url + "/", timeout=30).json()["pid"] == before  # still warm
    exited = httpx2.get(running.url + "/exit", timeout=30)
    assert exited.status_code == 502
    assert "Runtime exited with error: exit status 3" in log.read_text()
    assert httpx2.get(running.url + "/", timeout=30).json()["pid"] != before


def test_payload_limit(emulator: tuple[LambdaEmulator, Path]) -> None:
    running, _log = emulator
    too_big = httpx2.post(running.url + "/", content=b"x" * (6 * 1024 * 1024 + 1), timeout=30)
    assert too_big.status_code == 413


def test_init_failure_is_reported(tmp_path: Path) -> None:
    source = "raise RuntimeError('broken-at-import')\n"
    for running, log in _emulator(tmp_path, source):
        response = httpx2.get(running.url + "/", timeout=30)
        assert response.status_code == 502
        text = log.read_text()
        assert "broken-at-import" in text and "Status: error" in text
