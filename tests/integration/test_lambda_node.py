"""The local Lambda runs the managed Node.js runtimes (nodejs20.x, nodejs22.x) under AWS's own
runtime interface client (`aws-lambda-ric` from npm, built in the machine cache with the
runtime's node; `node_runtime.py`).

Zips written here, run through `LambdaEmulator` and its Function URL front door: an ES module
handler (payload 2.0 in, `{statusCode, headers, body}` out) that reads a secret at cold start
with the runtime's own `@aws-sdk/client-secrets-manager` from the loopback Secrets Manager
stand-in, and shows what it sees (Lambda's variables for Node, NODE_PATH, the node flags, a
read-only task root and a writable /tmp); warm invocations reuse the process, a handler
exception is answered 502 and stays warm, an init error and a timeout are answered 502 and
reported. A CommonJS handler, nodejs20.x and nodejs22.x each on their own node, the exec
wrapper with AWS's Lambda Web Adapter layer running a zip's `bootstrap` (a node:http server)
and the same for a Python function, Node deployments mapped by `local.py` (one through the
background supervisor), and no process left after a stop.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import stat
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from orchestrator.artifacts import Artifact
from orchestrator.errors import OperationError
from orchestrator.paths import cache_root
from targets.aws_lambda import LambdaOptions, local
from targets.aws_lambda.emulator import LambdaEmulator, LambdaFunction
from targets.aws_lambda.local_runtime import runtime_python
from targets.aws_lambda.node_runtime import NODE_VERSIONS, RIC_VERSIONS, NodeRuntime, node_runtime
from targets.aws_lambda.web_adapter import web_adapter_layer
from targets.base import LocalLaunch, host_architecture

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-värde"
TASKS = cache_root() / "lambda-local" / "test-tasks"

ESM_HANDLER = """
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";

const require = createRequire(import.meta.url);
if (process.env.FAIL_INIT === "1") throw new Error("boom-at-init");
const arns = JSON.parse(process.env.MCP_DEPLOY_SECRET_ARNS ?? "{}");
let secretSha = null;
if (arns.CANARY) {
  const client = new SecretsManagerClient({});
  const answer = await client.send(new GetSecretValueCommand({ SecretId: arns.CANARY }));
  secretSha = createHash("sha256").update(answer.SecretString).digest("hex");
}

function probe(path) {
  try {
    writeFileSync(path, "x");
    return "written";
  } catch (error) {
    return error.code;
  }
}

const NAMES = ["AWS_EXECUTION_ENV", "NODE_PATH", "LAMBDA_RUNTIME_DIR", "LAMBDA_TASK_ROOT",
  "NODE_OPTIONS", "TZ", "_HANDLER", "PATH", "LANG", "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION",
  "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "GREETING", "AWS_LAMBDA_EXEC_WRAPPER"];

export const handler = async (event, context) => {
  const path = event.rawPath;
  if (path === "/raise") throw new Error("boom-from-handler");
  if (path === "/slow") await new Promise((done) => setTimeout(done, 30000));
  return {
    statusCode: 201,
    headers: { "x-fn": "esm" },
    cookies: ["a=1"],
    body: JSON.stringify({
      pid: process.pid,
      version: process.version,
      method: event.requestContext.http.method,
      path,
      query: event.rawQueryString,
      headers: event.headers,
      body: event.isBase64Encoded ? Buffer.from(event.body, "base64").toString() : event.body,
      secretSha,
      sdk: require.resolve("@aws-sdk/client-secrets-manager"),
      env: Object.fromEntries(NAMES.map((name) => [name, process.env[name] ?? null])),
      execArgv: process.execArgv,
      writes: { taskRoot: probe(process.env.LAMBDA_TASK_ROOT + "/x"), tmp: probe("/tmp/x") },
      requestId: context.awsRequestId,
      remainingMs: context.getRemainingTimeInMillis(),
    }),
  };
};
"""

CJS_HANDLER = """
const sdk = require("@aws-sdk/client-secrets-manager");
exports.handler = async (event) => ({
  statusCode: 200,
  body: JSON.stringify({
    version: process.version,
    commonjs: typeof module === "object" && typeof exports === "object",
    sdk: typeof sdk.SecretsManagerClient,
    executionEnv: process.env.AWS_EXECUTION_ENV,
    path: event.rawPath,
  }),
});
"""

# The zip's `bootstrap` (what LWA's /opt/bootstrap execs) runs the runtime's node.
BOOTSTRAP = '#!/bin/sh\nexec node "$LAMBDA_TASK_ROOT/server.js"\n'
SERVER = """
const http = require("node:http");
http.createServer((request, response) => {
  let body = "";
  request.on("data", (chunk) => (body += chunk));
  request.on("end", () => {
    response.writeHead(200, { "content-type": "application/json", "x-app": "node" });
    response.end(JSON.stringify({
      pid: process.pid, version: process.version, node: process.execPath, method: request.method,
      path: request.url, body, handler: process.env._HANDLER,
      executionEnv: process.env.AWS_EXECUTION_ENV, host: request.headers.host,
    }));
  });
}).listen(Number(process.env.AWS_LWA_PORT), "127.0.0.1");
"""


def function_zip(directory: Path, files: dict[str, str], executables: tuple[str, ...] = ()) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            info.create_system = 3
            mode = 0o755 if name in executables else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, text)
    data = buffer.getvalue()
    path = directory / f"{hashlib.sha256(data).hexdigest()}.zip"
    path.write_bytes(data)
    return path


def node_function(zip_path: Path, major: str = "22", **overrides: Any) -> LambdaFunction:
    settings: dict[str, Any] = {
        "name": "node-probe",
        "zip_path": zip_path,
        "python": "3.11",
        "memory": 512,
        "timeout": 5,
        "ephemeral_storage": 512,
        "region": "eu-west-1",
        "variables": {"GREETING": "Hallo"},
        "handler": "index.handler",
        "runtime": f"nodejs{major}.x",
    }
    settings.update(overrides)
    return LambdaFunction(**settings)


@contextmanager
def running(
    function: LambdaFunction, log: Path, secrets: dict[str, str] | None = None, **kwargs: Any
) -> Iterator[LambdaEmulator]:
    """The emulator of `function`, started; on the way out it is stopped and every process of
    its last execution environment must be gone."""
    with log.open("ab") as sink:
        emulator = LambdaEmulator(
            function, secrets or {}, task_cache=TASKS, log=sink, **kwargs
        ).start()
        seen: list[int] = []
        try:
            yield emulator
            seen = emulator.environment_pids()
        finally:
            emulator.stop()
    assert [pid for pid in seen if alive(pid)] == []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_for_log(log: Path, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while text not in (content := log.read_text()):
        assert time.monotonic() < deadline, content
        time.sleep(0.01)
    return content


@pytest.fixture(scope="module")
def node22() -> NodeRuntime:
    return node_runtime("22", lambda message: print(message, file=sys.stderr))


@pytest.fixture(scope="module")
def node20() -> NodeRuntime:
    return node_runtime("20", lambda message: print(message, file=sys.stderr))


@pytest.fixture(scope="module")
def adapter_layer() -> Path:
    return web_adapter_layer(lambda message: print(message, file=sys.stderr))


def test_an_es_module_handler_behind_the_function_url(tmp_path: Path, node22: NodeRuntime) -> None:
    zip_path = function_zip(tmp_path, {"index.mjs": ESM_HANDLER})
    log = tmp_path / "function.log"
    function = node_function(zip_path)
    with running(function, log, {"CANARY": SECRET}, runtime_node=node22) as emulator:
        response = httpx2.post(
            emulator.url + "/echo/me?x=1&x=2",
            content=b'{"k": 1}',
            headers={"X-Probe": "yes", "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        assert response.headers["x-fn"] == "esm"
        assert response.headers["set-cookie"] == "a=1"
        first = response.json()
        again = httpx2.get(emulator.url + "/again", timeout=30).json()
        raised = httpx2.get(emulator.url + "/raise", timeout=30)
        after = httpx2.get(emulator.url + "/after", timeout=30).json()
    assert first["version"] == f"v{NODE_VERSIONS['22']}"
    assert (first["method"], first["path"], first["query"]) == ("POST", "/echo/me", "x=1&x=2")
    assert first["body"] == '{"k": 1}'
    assert first["headers"]["x-probe"] == "yes"
    assert first["headers"]["host"].endswith(".lambda-url.eu-west-1.on.aws")
    assert first["secretSha"] == hashlib.sha256(SECRET.encode()).hexdigest()
    runtime_dir = node22.runtime_dir
    assert first["sdk"].startswith(f"{runtime_dir}/node_modules/@aws-sdk/client-secrets-manager/")
    env = first["env"]
    task_root = env["LAMBDA_TASK_ROOT"]
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs22.x"
    assert env["NODE_PATH"] == (
        "/opt/nodejs/node22/node_modules:/opt/nodejs/node_modules:"
        f"{runtime_dir}/node_modules:{runtime_dir}:{task_root}"
    )
    assert env["LAMBDA_RUNTIME_DIR"] == str(runtime_dir)
    assert env["NODE_OPTIONS"] is None and env["TZ"] == ":UTC" and env["LANG"] == "en_US.UTF-8"
    assert env["_HANDLER"] == "index.handler" and env["GREETING"] == "Hallo"
    assert env["PATH"].split(":")[0] == str(node22.node.parent)
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert first["execArgv"][:6] == [
        "--expose-gc",
        "--max-http-header-size",
        "81920",
        "--max-semi-space-size=25",
        "--max-old-space-size=461",
        "--no-experimental-require-module",
    ]
    assert "--no-experimental-detect-module" in first["execArgv"]
    assert first["writes"] == {"taskRoot": "EROFS", "tmp": "written"}
    assert 0 < first["remainingMs"] <= 5000
    # Warm invocations (the handler's exception included) run in the same process.
    assert raised.status_code == 502
    assert first["pid"] == again["pid"] == after["pid"]
    assert len({first["requestId"], again["requestId"], after["requestId"]}) == 3
    text = log.read_text()
    ric = RIC_VERSIONS["22"]
    version = f"nodejs:22 (local emulation, aws-lambda-ric {ric}, node {NODE_VERSIONS['22']})"
    assert f"INIT_START Runtime Version: {version}" in text
    assert text.count("INIT_START") == 1 and text.count("REPORT RequestId") == 4
    assert "boom-from-handler" in text and "Invoke Error" in text
    assert SECRET not in text


def test_a_timeout_replaces_the_environment(tmp_path: Path, node22: NodeRuntime) -> None:
    zip_path = function_zip(tmp_path, {"index.mjs": ESM_HANDLER})
    log = tmp_path / "function.log"
    with running(node_function(zip_path, timeout=2), log, runtime_node=node22) as emulator:
        before = httpx2.get(emulator.url + "/", timeout=30).json()
        started = time.monotonic()
        slow = httpx2.get(emulator.url + "/slow", timeout=30)
        waited = time.monotonic() - started
        assert not alive(before["pid"])
        after = httpx2.get(emulator.url + "/", timeout=30).json()
    assert slow.status_code == 502 and 1.9 < waited < 6
    assert before["pid"] != after["pid"]
    content = log.read_text()
    assert "Task timed out after 2.00 seconds" in content
    assert content.count("INIT_START") == 2


def test_an_init_error_is_answered_502_and_reported(tmp_path: Path, node22: NodeRuntime) -> None:
    zip_path = function_zip(tmp_path, {"index.mjs": ESM_HANDLER})
    log = tmp_path / "function.log"
    function = node_function(zip_path, variables={"FAIL_INIT": "1"})
    with running(function, log, runtime_node=node22) as emulator:
        failed = httpx2.get(emulator.url + "/", timeout=30)
        assert emulator.environment_pids() == []
    assert failed.status_code == 502
    content = wait_for_log(log, "INIT_REPORT")
    assert "boom-at-init" in content
    assert "Status: error" in content


def test_a_commonjs_handler_on_both_node_majors(
    tmp_path: Path, node20: NodeRuntime, node22: NodeRuntime
) -> None:
    zip_path = function_zip(tmp_path, {"index.js": CJS_HANDLER})
    answers = {}
    for major, runtime in (("20", node20), ("22", node22)):
        log = tmp_path / f"node{major}.log"
        with running(node_function(zip_path, major), log, runtime_node=runtime) as emulator:
            response = httpx2.get(emulator.url + "/cjs", timeout=30)
            assert response.status_code == 200, (response.text, log.read_text())
            answers[major] = response.json()
        assert f"nodejs:{major} (local emulation, aws-lambda-ric {RIC_VERSIONS[major]}" in (
            log.read_text()
        )
    for major, answer in answers.items():
        assert answer == {
            "version": f"v{NODE_VERSIONS[major]}",
            "commonjs": True,
            "sdk": "function",
            "executionEnv": f"AWS_Lambda_nodejs{major}.x",
            "path": "/cjs",
        }


def test_node20_imports_the_runtime_sdk_from_an_es_module(
    tmp_path: Path, node20: NodeRuntime
) -> None:
    """ES modules resolve from NODE_PATH on nodejs20.x too (the RIC 3.x line)."""
    zip_path = function_zip(tmp_path, {"index.mjs": ESM_HANDLER})
    log = tmp_path / "function.log"
    function = node_function(zip_path, "20")
    with running(function, log, {"CANARY": SECRET}, runtime_node=node20) as emulator:
        answer = httpx2.get(emulator.url + "/", timeout=30).json()
    assert answer["version"] == f"v{NODE_VERSIONS['20']}"
    assert answer["secretSha"] == hashlib.sha256(SECRET.encode()).hexdigest()
    assert answer["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert "--no-experimental-detect-module" not in answer["execArgv"]


def test_node_options_turn_a_disabled_feature_back_on(tmp_path: Path, node22: NodeRuntime) -> None:
    zip_path = function_zip(tmp_path, {"index.mjs": ESM_HANDLER})
    variables = {"NODE_OPTIONS": "--experimental-require-module"}
    function = node_function(zip_path, variables=variables)
    with running(function, tmp_path / "function.log", runtime_node=node22) as emulator:
        answer = httpx2.get(emulator.url + "/", timeout=30).json()
    assert "--no-experimental-require-module" not in answer["execArgv"]
    assert "--no-experimental-detect-module" in answer["execArgv"]
    assert answer["env"]["NODE_OPTIONS"] == "--experimental-require-module"


def test_the_exec_wrapper_runs_the_zips_bootstrap_behind_the_web_adapter(
    tmp_path: Path, node22: NodeRuntime, adapter_layer: Path
) -> None:
    zip_path = function_zip(
        tmp_path, {"bootstrap": BOOTSTRAP, "server.js": SERVER}, executables=("bootstrap",)
    )
    log = tmp_path / "function.log"
    variables = {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap", "AWS_LWA_PORT": str(free_port())}
    function = node_function(
        zip_path, handler="bootstrap", layers=(adapter_layer,), variables=variables
    )
    assert not function.single_process
    with running(function, log, runtime_node=node22) as emulator:
        first = httpx2.post(emulator.url + "/mcp?q=1", content=b"hello", timeout=30)
        assert first.status_code == 200, log.read_text()
        second = httpx2.get(emulator.url + "/two", timeout=30).json()
        members = emulator.environment_pids()
    answer = first.json()
    assert first.headers["x-app"] == "node"
    assert (answer["method"], answer["path"], answer["body"]) == ("POST", "/mcp?q=1", "hello")
    assert answer["version"] == f"v{NODE_VERSIONS['22']}"
    assert answer["node"] == str(node22.node)
    assert answer["handler"] == "bootstrap"
    assert answer["executionEnv"] == "AWS_Lambda_nodejs22.x"
    # One server process for both (its pid as its own PID namespace numbers it); the
    # environment: holder, its init, the adapter, the wrapper's chain (bootstrap -> node).
    assert answer["pid"] == second["pid"] and len(members) >= 4
    content = log.read_text()
    assert "EXTENSION\tName: lambda-adapter\tState: Ready" in content
    assert "INIT_START Runtime Version: nodejs:22 (local emulation" in content
    assert [pid for pid in members if alive(pid)] == []


def test_an_exec_wrapper_that_is_missing_fails_the_init(
    tmp_path: Path, node22: NodeRuntime
) -> None:
    zip_path = function_zip(tmp_path, {"index.mjs": ESM_HANDLER})
    log = tmp_path / "function.log"
    function = node_function(zip_path, variables={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/nothing"})
    with running(function, log, runtime_node=node22) as emulator:
        failed = httpx2.get(emulator.url + "/", timeout=30)
    assert failed.status_code == 502
    content = wait_for_log(log, "INIT_REPORT")
    assert "/opt/nothing: does not exist" in content
    assert "Runtime.ExitError" in content


PYTHON_WRAPPED = """
import json, os, sys

def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({
        "wrapped": os.environ.get("WRAPPED"), "argv0": sys.argv[0], "pid": os.getpid()})}
"""
WRAPPER = '#!/bin/sh\nexport WRAPPED="$*"\nexec "$@"\n'


def test_a_python_function_runs_through_its_exec_wrapper(tmp_path: Path) -> None:
    zip_path = function_zip(
        tmp_path, {"fn.py": PYTHON_WRAPPED, "wrapper": WRAPPER}, executables=("wrapper",)
    )
    log = tmp_path / "function.log"
    with log.open("ab") as sink:
        task_root = TASKS / zip_path.stem
        function = LambdaFunction(
            name="python-wrapped",
            zip_path=zip_path,
            python="3.11",
            memory=256,
            timeout=5,
            ephemeral_storage=512,
            region="eu-west-1",
            handler="fn.handler",
            variables={"AWS_LAMBDA_EXEC_WRAPPER": f"{task_root}/wrapper"},
        )
        python = runtime_python("3.11")
        emulator = LambdaEmulator(
            function, {}, runtime_python=python, task_cache=TASKS, log=sink
        ).start()
        try:
            answer = httpx2.get(emulator.url + "/", timeout=30).json()
        finally:
            emulator.stop()
    assert answer["wrapped"] == f"{python} -m awslambdaric fn.handler"
    assert "INIT_START Runtime Version: python:3.11" in log.read_text()


def test_node_runtimes_are_pinned_per_major() -> None:
    with pytest.raises(OperationError, match=r"no nodejs18\.x runtime"):
        node_runtime("18", print)
    assert set(NODE_VERSIONS) == set(RIC_VERSIONS) == {"20", "22"}


def launch_of(zip_path: Path, tmp_path: Path, runtime_version: str = "") -> LocalLaunch:
    digest = zip_path.stem
    artifact = Artifact(
        kind="lambda-zip",
        target="lambda",
        digest=f"sha256:{digest}",
        size=zip_path.stat().st_size,
        inputs_hash=digest,
        path=zip_path,
    )
    return LocalLaunch(
        server="nodeserver",
        environment="local",
        python="3.12",
        artifact=artifact,
        options=LambdaOptions(arch=host_architecture(), timeout=10),
        mcp_path="/mcp",
        variables={"GREETING": "Hallo"},
        secrets={"CANARY": SECRET},
        state_dir=tmp_path / "state",
        runtime="node",
        runtime_version=runtime_version,
    )


def test_local_maps_node_launches_to_functions(tmp_path: Path, adapter_layer: Path) -> None:
    entry = local.function_of(launch_of(function_zip(tmp_path, {"index.mjs": "x"}), tmp_path))
    assert (entry.runtime, entry.handler, entry.layers) == ("nodejs22.x", "index.handler", ())
    assert dict(entry.variables) == {"GREETING": "Hallo"} and entry.single_process
    command_zip = function_zip(tmp_path, {"bootstrap": BOOTSTRAP}, executables=("bootstrap",))
    command = local.function_of(launch_of(command_zip, tmp_path, "20"))
    assert (command.runtime, command.handler) == ("nodejs20.x", "bootstrap")
    assert command.layers == (adapter_layer,) and not command.single_process
    assert command.variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert int(command.variables["AWS_LWA_PORT"]) > 0
    assert LambdaFunction.from_dict(json.loads(json.dumps(command.to_dict()))) == command


def test_a_node_deployment_through_the_background_supervisor(
    tmp_path: Path, node22: NodeRuntime
) -> None:
    launch = launch_of(function_zip(tmp_path, {"index.mjs": ESM_HANDLER}), tmp_path, "22")
    handle = local.start_background(launch)
    try:
        answer = httpx2.get(handle.url.removesuffix("/mcp") + "/hello", timeout=30).json()
        supervisor = int(handle.data["pid"])
        members = [pid for pid in descendants(supervisor) if pid != supervisor]
        assert answer["pid"] in members
    finally:
        local.stop(handle)
    assert answer["version"] == f"v{NODE_VERSIONS['22']}"
    assert answer["secretSha"] == hashlib.sha256(SECRET.encode()).hexdigest()
    assert answer["env"]["GREETING"] == "Hallo"
    assert [pid for pid in members if alive(pid)] == []
    assert not local.alive(handle)
    assert "INIT_START Runtime Version: nodejs:22" in local.log_tail(handle, 200)


def descendants(pid: int) -> list[int]:
    from targets.aws_lambda.peers import descendants as all_descendants

    return all_descendants([pid])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
