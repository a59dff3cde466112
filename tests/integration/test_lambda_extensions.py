"""The local Lambda runs OS-only functions (provided.al2023) with layers and extensions, so AWS's
Lambda Web Adapter, built from its crate, runs in it as it does in the cloud.

The function is a zip whose `bootstrap` is a small HTTP server (a Python script) on
127.0.0.1:$AWS_LWA_PORT; the adapter's layer comes from `web_adapter.web_adapter_layer` (built
once per machine). Checked: Function URL requests through the real adapter (status, headers,
cookies, bodies, query strings, warm reuse), the environment (variables, read-only task root
and /opt, tmpfs /tmp, its own PID namespace), the Extensions API protocol with a hand-written
extension (register, INVOKE per invocation with the right request id, SHUTDOWN on stop, on a
timeout and on a runtime crash; an extension crash fails the invocation), init failures (a
web app that never gets ready, extensions that crash or report an init error, no bootstrap),
the peer check of the Extensions API (and the Secrets Manager stand-in admitting the
environment), a Python function with a layer, and that ending an environment leaves no
process behind. Then a binary deployment through `local.py`'s background supervisor, as
`deploy --env local` runs it, and the Extensions API's answers one by one.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from orchestrator.artifacts import Artifact
from orchestrator.paths import cache_root
from targets.aws_lambda import LambdaOptions, emulator, local
from targets.aws_lambda.emulator import LambdaEmulator, LambdaFunction
from targets.aws_lambda.extensions_api import ExtensionsAPI
from targets.aws_lambda.http1 import Request
from targets.aws_lambda.local_runtime import runtime_python
from targets.aws_lambda.web_adapter import WRAPPER, web_adapter_layer
from targets.base import LocalLaunch, host_architecture

pytestmark = pytest.mark.integration

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
EXTENSIONS = "/2020-01-01/extension"

# The web app: the function's bootstrap (Lambda runs it as the runtime of provided.al2023).
# The interpreter of the test's scripts, by its real path: the venv's `python` is a link, and
# when the venv lives under /tmp (a clone there) the environment's fresh /tmp would hide it.
# The scripts need the standard library only.
SCRIPT_PYTHON = os.path.realpath(sys.executable)

APP = r"""#!{python}
import http.server, json, os, sys, time, urllib.request, uuid

INSTANCE = uuid.uuid4().hex
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension"

def probe(path):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        return "written"
    except OSError as error:
        return f"{{type(error).__name__}}:{{error.errno}}"

def call(path, method="GET", headers=None, body=None):
    request = urllib.request.Request(API + path, data=body, headers=headers or {{}}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return [answer.status, json.load(answer)]
    except urllib.error.HTTPError as error:
        return [error.code, json.loads(error.read() or b"null")]

def mounts():
    found = {{}}
    for line in open("/proc/self/mountinfo"):
        left, right = line.split(" - ")
        found[left.split()[4]] = (right.split()[0], left.split()[5].split(",")[0])
    return found

class App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        status, extra = 200, {{}}
        if self.path == "/sleep":
            time.sleep(60)
        if self.path == "/pause":
            time.sleep(1)
        if self.path == "/exit":
            os._exit(3)
        if self.path.startswith("/status/"):
            status = int(self.path.rsplit("/", 1)[1])
        if self.path == "/secret":
            arn = json.loads(os.environ["MCP_DEPLOY_SECRET_ARNS"])["CANARY"]
            request = urllib.request.Request(
                os.environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"],
                data=json.dumps({{"SecretId": arn}}).encode(),
                headers={{"X-Amz-Target": "secretsmanager.GetSecretValue",
                         "X-Amz-Security-Token": os.environ["AWS_SESSION_TOKEN"]}},
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                extra["secret"] = json.load(answer)["SecretString"]
        if self.path == "/extensions-api":
            stranger = {{"Lambda-Extension-Identifier": str(uuid.uuid4())}}
            extra["unknown"] = call("/event/next", headers=stranger)
            late = {{"Lambda-Extension-Name": "late"}}
            extra["register"] = call("/register", "POST", late, b'{{"events": []}}')
        task_root = os.environ["LAMBDA_TASK_ROOT"]
        mounted = mounts()
        data = json.dumps({{
            "instance": INSTANCE,
            "pid": os.getpid(),
            "method": self.command,
            "path": self.path,
            "headers": {{k.lower(): v for k, v in self.headers.items()}},
            "body": body,
            "env": {{k: os.environ.get(k) for k in (
                "AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
                "AWS_EXECUTION_ENV", "AWS_LAMBDA_RUNTIME_API", "GREETING", "AWS_REGION",
                "AWS_LWA_PORT", "PATH", "AWS_LAMBDA_INITIALIZATION_TYPE")}},
            "opt": sorted(os.listdir("/opt")),
            "opt_extensions": sorted(os.listdir("/opt/extensions")),
            "opt_bootstrap": open("/opt/bootstrap").read(),
            "writes": {{"opt": probe("/opt/x"), "task_root": probe(task_root + "/x"),
                        "tmp": probe("/tmp/x")}},
            "mounts": {{path: mounted.get(path) for path in ("/tmp", "/opt", task_root)}},
            "pid1": open("/proc/1/cmdline").read().split("\0")[0],
            **extra,
        }}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-App", "yes")
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = answer

if os.environ.get("MODE") == "never-ready":
    print("never getting ready", flush=True)
    time.sleep(3600)
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["AWS_LWA_PORT"])), App)
print("app listening", flush=True)
server.serve_forever()
"""

# A hand-written external extension: it logs what it sees as `PROBE-EXT {json}` lines.
EXTENSION = r"""#!{python}
import json, os, sys, time, urllib.request

BASE = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension"

def say(kind, **data):
    print("PROBE-EXT " + json.dumps({{"kind": kind, **data}}), flush=True)

def call(path, headers, body=None):
    method = "POST" if body is not None else "GET"
    request = urllib.request.Request(BASE + path, data=body, headers=headers, method=method)
    with urllib.request.urlopen(request) as answer:
        return answer.status, dict(answer.headers), json.load(answer)

say("env", env={{k: os.environ.get(k) for k in (
    "LAMBDA_TASK_ROOT", "_HANDLER", "AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_EXECUTION_ENV", "GREETING", "AWS_SESSION_TOKEN")}})
mode = os.environ.get("PROBE_MODE", "normal")
if mode == "exit-at-once":
    sys.exit(3)
status, headers, body = call(
    "/register", {{"Lambda-Extension-Name": "probe-ext"}}, b'{{"events": ["INVOKE", "SHUTDOWN"]}}'
)
identifier = headers["Lambda-Extension-Identifier"]
say("registered", status=status, body=body)
if mode == "init-error":
    status, _, body = call("/init/error", {{"Lambda-Extension-Identifier": identifier,
        "Lambda-Extension-Function-Error-Type": "Extension.ProbeFailed"}}, b"{{}}")
    say("init-error", status=status, body=body)
    sys.exit(1)
while True:
    _, headers, event = call("/event/next", {{"Lambda-Extension-Identifier": identifier}})
    say("event", event=event, event_id=headers.get("Lambda-Extension-Event-Identifier"))
    if event["eventType"] == "SHUTDOWN":
        sys.exit(0)
    if mode == "crash-on-invoke":
        time.sleep(0.3)
        sys.exit(7)
"""


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.format(python=SCRIPT_PYTHON))
    path.chmod(0o755)
    return path


def bootstrap_zip(directory: Path, name: str = "bootstrap") -> Path:
    """A provided.al2023 zip: the web app as `name` (mode 0755, as a Unix zip records it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        archive.writestr(info, APP.format(python=SCRIPT_PYTHON))
    data = buffer.getvalue()
    path = directory / f"{hashlib.sha256(data).hexdigest()}.zip"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def adapter_layer() -> Path:
    """AWS's Lambda Web Adapter layer, built from crates.io once per machine."""
    return web_adapter_layer(lambda message: print(message, file=sys.stderr))


@pytest.fixture(scope="module")
def probe_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    layer = tmp_path_factory.mktemp("probe-layer")
    executable(layer / "extensions" / "probe-ext", EXTENSION)
    return layer


@contextmanager
def running(
    directory: Path,
    layers: tuple[Path, ...],
    *,
    timeout: int = 10,
    handler: str = "bootstrap",
    secrets: dict[str, str] | None = None,
    **variables: str,
) -> Iterator[tuple[LambdaEmulator, Path]]:
    function = LambdaFunction(
        name="binary-local",
        zip_path=bootstrap_zip(directory, handler),
        python="3.11",
        memory=256,
        timeout=timeout,
        ephemeral_storage=512,
        region="eu-west-1",
        variables={"GREETING": "Hi", "AWS_LWA_PORT": str(free_port()), **variables},
        handler=handler,
        runtime="provided.al2023",
        layers=layers,
    )
    log = directory / "function.log"
    with log.open("ab") as sink:
        started = LambdaEmulator(
            function,
            secrets or {},
            task_cache=cache_root() / "lambda-local" / "test-tasks",
            log=sink,
        ).start()
        try:
            yield started, log
        finally:
            started.stop()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def call(url: str, path: str = "/", method: str = "GET", body: bytes = b"") -> httpx2.Response:
    return httpx2.request(method, url + path, content=body, timeout=60)


def app(url: str, path: str = "/", method: str = "GET", body: bytes = b"") -> dict[str, Any]:
    response = call(url, path, method, body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def request_id(answer: dict[str, Any]) -> str:
    """The invocation's request id, as the adapter passes its Lambda context to the app."""
    return str(json.loads(answer["headers"]["x-amzn-lambda-context"])["request_id"])


def probe_lines(log: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line.split("PROBE-EXT ", 1)[1])
        for line in log.read_text().splitlines()
        if line.startswith("PROBE-EXT ")
    ]


def events(log: Path) -> list[dict[str, Any]]:
    return [line["event"] for line in probe_lines(log) if line["kind"] == "event"]


def gone(pids: list[int], within: float = 5.0) -> list[int]:
    """The pids of `pids` still alive (zombies do not count) after at most `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        alive = []
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                alive.append(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


class PidWatch:
    """Every pid the emulator's environment had while a request was on its way."""

    def __init__(self, running: LambdaEmulator) -> None:
        self.pids: set[int] = set()
        self._running = running
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.pids.update(self._running.environment_pids())
            time.sleep(0.005)

    def __enter__(self) -> PidWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- (a) a binary server behind the real Lambda Web Adapter ----------------------------------


def test_a_binary_server_behind_the_real_web_adapter(tmp_path: Path, adapter_layer: Path) -> None:
    with running(tmp_path, (adapter_layer,)) as (started, log):
        posted = app(started.url, "/echo/here?x=1&y=two", "POST", b'{"k": "v"}')
        assert posted["method"] == "POST"
        assert posted["path"] == "/echo/here?x=1&y=two"
        assert posted["body"] == '{"k": "v"}'
        assert posted["headers"]["host"] == (
            "localfunctionurl0000000000000000.lambda-url.eu-west-1.on.aws"
        )
        context = json.loads(posted["headers"]["x-amzn-lambda-context"])
        assert context["invoked_function_arn"].endswith(":function:binary-local")
        env = posted["env"]
        assert env["_HANDLER"] == "bootstrap" and env["AWS_EXECUTION_ENV"] is None
        assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime" and env["GREETING"] == "Hi"
        assert env["AWS_LAMBDA_RUNTIME_API"] == started.runtime_api
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == "binary-local"
        assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
        assert env["PATH"] == "/usr/local/bin:/usr/bin/:/bin:/opt/bin"
        # /opt is the layer, read-only; the task root read-only; /tmp a fresh tmpfs.
        assert posted["opt"] == ["bootstrap", "extensions"]
        assert posted["opt_extensions"] == ["lambda-adapter"]
        assert posted["opt_bootstrap"] == WRAPPER
        assert posted["writes"] == {
            "opt": "OSError:30",
            "task_root": "OSError:30",
            "tmp": "written",
        }
        assert posted["mounts"]["/tmp"][0] == "tmpfs"
        assert posted["mounts"]["/opt"][1] == "ro"
        assert posted["mounts"][env["LAMBDA_TASK_ROOT"]][1] == "ro"
        assert posted["pid1"] == "sleep"  # its own PID namespace

        teapot = call(started.url, "/status/418")
        assert teapot.status_code == 418
        assert teapot.headers["x-app"] == "yes"
        assert teapot.headers["content-type"] == "application/json"
        assert teapot.headers.get_list("set-cookie") == ["a=1", "b=2"]

        warm = [app(started.url, f"/warm/{n}") for n in range(3)]
        assert {answer["instance"] for answer in [posted, *warm]} == {posted["instance"]}
        assert {answer["pid"] for answer in warm} == {posted["pid"]}
        ids = [request_id(answer) for answer in [posted, *warm]]
        assert len(set(ids)) == 4

        text = log.read_text()
        assert "INIT_START Runtime Version: provided:al2023 (local emulation)" in text
        assert "EXTENSION\tName: lambda-adapter\tState: Ready\tEvents: []" in text
        for rid in ids:
            assert f"START RequestId: {rid} Version: $LATEST" in text
        assert text.count("Init Duration:") == 1


# -- (b) the Extensions API, with a hand-written extension ------------------------------------


def test_an_extension_gets_one_invoke_per_invocation_and_a_shutdown_at_stop(
    tmp_path: Path, adapter_layer: Path, probe_layer: Path
) -> None:
    with running(tmp_path, (adapter_layer, probe_layer)) as (started, log):
        answers = [app(started.url, f"/n/{n}") for n in range(3)]
        assert answers[0]["opt_extensions"] == ["lambda-adapter", "probe-ext"]  # merged layers
        api, arn = started.runtime_api, "arn:aws:lambda:eu-west-1:000000000000:function:"
        time.sleep(0.2)  # the last INVOKE line is written as the extension gets it
    lines = probe_lines(log)
    (env,) = [line["env"] for line in lines if line["kind"] == "env"]
    assert env["LAMBDA_TASK_ROOT"] is None and env["_HANDLER"] is None  # not for extensions
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] is None and env["AWS_EXECUTION_ENV"] is None
    assert env["AWS_LAMBDA_RUNTIME_API"] == api and env["GREETING"] == "Hi"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "binary-local" and env["AWS_SESSION_TOKEN"]
    (registered,) = [line for line in lines if line["kind"] == "registered"]
    assert registered["status"] == 200
    assert registered["body"] == {
        "functionName": "binary-local",
        "functionVersion": "$LATEST",
        "handler": "bootstrap",
    }
    seen = events(log)
    invokes = [event for event in seen if event["eventType"] == "INVOKE"]
    assert [event["requestId"] for event in invokes] == [request_id(a) for a in answers]
    for event, answer in zip(invokes, answers, strict=True):
        assert event["invokedFunctionArn"] == arn + "binary-local"
        assert event["deadlineMs"] > time.time() * 1000 - 60_000
        assert event["tracing"] == {
            "type": "X-Amzn-Trace-Id",
            "value": answer["headers"]["x-amzn-trace-id"],
        }
    assert seen[-1]["eventType"] == "SHUTDOWN" and seen[-1]["shutdownReason"] == "spindown"
    assert len(seen) == 4
    text = log.read_text()
    assert "EXTENSION\tName: probe-ext\tState: Ready\tEvents: [INVOKE,SHUTDOWN]" in text


def test_a_timeout_and_a_runtime_crash_end_the_environment_with_a_shutdown(
    tmp_path: Path, adapter_layer: Path, probe_layer: Path
) -> None:
    with running(tmp_path, (adapter_layer, probe_layer), timeout=2) as (started, log):
        first = app(started.url)
        before = started.environment_pids()
        began = time.monotonic()
        slow = call(started.url, "/sleep")
        assert slow.status_code == 502 and slow.json() == {"Message": "Internal Server Error"}
        assert time.monotonic() - began < 2 + 3  # the timeout, then the shutdown
        assert "Task timed out after 2.00 seconds" in log.read_text()
        assert gone(before) == []
        second = app(started.url)
        assert second["instance"] != first["instance"]

        crashed = call(started.url, "/exit")
        assert crashed.status_code == 502
        third = app(started.url)
        assert third["instance"] != second["instance"]
    reasons = [e["shutdownReason"] for e in events(log) if e["eventType"] == "SHUTDOWN"]
    assert reasons == ["timeout", "failure", "spindown"]


def test_an_extension_that_crashes_fails_the_invocation_and_the_environment(
    tmp_path: Path, adapter_layer: Path, probe_layer: Path
) -> None:
    layers = (adapter_layer, probe_layer)
    with running(tmp_path, layers, PROBE_MODE="crash-on-invoke") as (started, log):
        with PidWatch(started) as watch:
            paused = call(started.url, "/pause")
        assert paused.status_code == 502  # the extension ended first
        assert "Error: Extension probe-ext exited: exit status 7" in log.read_text()
        assert len(watch.pids) >= 5 and gone(sorted(watch.pids)) == []
        assert call(started.url).status_code == 200  # a new environment (whose probe crashes)


# -- (c) init: timing and failures ------------------------------------------------------------


def test_a_web_app_that_never_gets_ready_times_the_init_out(
    tmp_path: Path, adapter_layer: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emulator, "INIT_LIMIT", 3.0)
    with running(tmp_path, (adapter_layer,), MODE="never-ready") as (started, log):
        began = time.monotonic()
        with PidWatch(started) as watch:
            failed = call(started.url)
        elapsed = time.monotonic() - began
        assert failed.status_code == 502
        assert 3.0 <= elapsed < 3.0 + 3.0, elapsed  # the limit, then the shutdown
        assert len(watch.pids) >= 4, watch.pids  # holder, its PID 1, adapter, app (+ nsenter)
        assert gone(sorted(watch.pids)) == []
        text = log.read_text()
        assert "never getting ready" in text
        assert "INIT_REPORT Init Duration: 3000.00 ms\tPhase: init\tStatus: timeout" in text
        assert "START RequestId" not in text


@pytest.mark.parametrize(
    ("mode", "error_type"),
    [("exit-at-once", "Extension.Crash"), ("init-error", "Extension.InitError")],
)
def test_an_extension_that_fails_during_init_fails_the_init(
    tmp_path: Path, adapter_layer: Path, probe_layer: Path, mode: str, error_type: str
) -> None:
    with running(tmp_path, (adapter_layer, probe_layer), PROBE_MODE=mode) as (started, log):
        began = time.monotonic()
        with PidWatch(started) as watch:
            failed = call(started.url)
        assert failed.status_code == 502
        assert time.monotonic() - began < 5
        assert gone(sorted(watch.pids)) == []
        text = log.read_text()
        assert f"Status: error\tError Type: {error_type}" in text
        assert "START RequestId" not in text
        state = "Launched\tEvents: []" if mode == "exit-at-once" else "InitError"
        assert f"EXTENSION\tName: probe-ext\tState: {state}" in text
        if mode == "init-error":
            (reported,) = [line for line in probe_lines(log) if line["kind"] == "init-error"]
            assert reported["status"] == 202
        assert call(started.url).status_code == 502  # and again: each request tries an init


def test_without_a_bootstrap_of_its_own_the_layers_bootstrap_runs_the_handler(
    tmp_path: Path, adapter_layer: Path
) -> None:
    """The zip has `serve`, not `bootstrap`: Lambda runs /opt/bootstrap, the adapter layer's
    wrapper, which execs ${LAMBDA_TASK_ROOT}/${_HANDLER}."""
    with running(tmp_path, (adapter_layer,), handler="serve") as (started, _log):
        answer = app(started.url)
        assert answer["env"]["_HANDLER"] == "serve"


def test_no_bootstrap_at_all_is_an_invalid_entrypoint(tmp_path: Path) -> None:
    with running(tmp_path, (), handler="serve") as (started, log):
        assert call(started.url).status_code == 502
        text = log.read_text()
    assert "Status: error\tError Type: Runtime.InvalidEntrypoint" in text


# -- (d) only the environment's processes may use the Extensions API ------------------------


def test_only_the_environment_may_use_the_extensions_api(
    tmp_path: Path, adapter_layer: Path
) -> None:
    secrets = {"CANARY": "canary-3f9a"}
    with running(tmp_path, (adapter_layer,), secrets=secrets) as (started, _log):
        assert app(started.url, "/secret")["secret"] == "canary-3f9a"  # the stand-in admits it
        inside = app(started.url, "/extensions-api")
        # A process of the environment is let in (and told what Lambda would tell it).
        assert inside["unknown"][0] == 403
        assert inside["unknown"][1]["errorType"] == "Extension.UnknownExtensionIdentifier"
        assert inside["register"][1]["errorType"] == "Extension.RegistrationClosed"
        # Anyone else is refused before any request is read: this process, another user.
        script = (
            "import json, sys, urllib.request, urllib.error, uuid\n"
            "api = 'http://' + sys.argv[1] + '/2020-01-01/extension'\n"
            "out = []\n"
            "stranger = {'Lambda-Extension-Identifier': str(uuid.uuid4())}\n"
            "for path, method, headers, body in (\n"
            "    ('/register', 'POST', {'Lambda-Extension-Name': 'lambda-adapter'}, b'{}'),\n"
            "    ('/event/next', 'GET', stranger, None),\n"
            "):\n"
            "    request = urllib.request.Request(api + path, body, headers, method=method)\n"
            "    try:\n"
            "        urllib.request.urlopen(request, timeout=5)\n"
            "        out.append([200, None])\n"
            "    except urllib.error.HTTPError as error:\n"
            "        out.append([error.code, json.loads(error.read())['errorType']])\n"
            "print(json.dumps(out))\n"
        )
        for prefix in ([], NOBODY):
            done = subprocess.run(
                [*prefix, sys.executable, "-I", "-c", script, started.runtime_api],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            assert json.loads(done.stdout) == [[403, "Forbidden"], [403, "Forbidden"]]
        assert app(started.url)["instance"] == inside["instance"]  # still serving, warm


# -- a managed runtime with a layer: Python runs with extensions too --------------------------

PYTHON_FUNCTION = """
import json, os

def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({
        "request_id": context.aws_request_id,
        "opt": sorted(os.listdir("/opt/extensions")),
        "execution_env": os.environ.get("AWS_EXECUTION_ENV"),
    })}
"""


def test_a_python_function_with_a_layer_runs_its_extension(
    tmp_path: Path, probe_layer: Path
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fn.py", PYTHON_FUNCTION)
    data = buffer.getvalue()
    zip_path = tmp_path / f"{hashlib.sha256(data).hexdigest()}.zip"
    zip_path.write_bytes(data)
    function = LambdaFunction(
        name="python-layers",
        zip_path=zip_path,
        python="3.11",
        memory=256,
        timeout=10,
        ephemeral_storage=512,
        region="eu-west-1",
        handler="fn.handler",
        layers=(probe_layer,),
    )
    log = tmp_path / "function.log"
    with log.open("ab") as sink:
        started = LambdaEmulator(
            function,
            {},
            runtime_python=runtime_python("3.11"),
            task_cache=cache_root() / "lambda-local" / "test-tasks",
            log=sink,
        ).start()
        try:
            answers = [app(started.url) for _ in range(2)]
        finally:
            started.stop()
    assert answers[0]["opt"] == ["probe-ext"]
    assert answers[0]["execution_env"] == "AWS_Lambda_python3.11"
    seen = events(log)
    assert [e["requestId"] for e in seen if e["eventType"] == "INVOKE"] == [
        a["request_id"] for a in answers
    ]
    assert seen[-1]["eventType"] == "SHUTDOWN"
    assert "INIT_START Runtime Version: python:3.11 (local emulation, awslambdaric)" in (
        log.read_text()
    )


# -- (e) ending an environment leaves nothing behind -----------------------------------------


def test_stop_leaves_no_process_behind(
    tmp_path: Path, adapter_layer: Path, probe_layer: Path
) -> None:
    with running(tmp_path, (adapter_layer, probe_layer)) as (started, _log):
        app(started.url)
        pids = started.environment_pids()
        commands = " ".join(command_line(pid) for pid in pids)
        for program in ("/opt/extensions/lambda-adapter", "/opt/extensions/probe-ext"):
            assert program in commands
        assert "/bootstrap" in commands and "sleep infinity" in commands
    assert gone(pids) == []


# -- the supervisor path of `deploy --env local` ----------------------------------------------


def test_a_binary_deployment_through_the_background_supervisor(
    tmp_path: Path, adapter_layer: Path
) -> None:
    zip_path = bootstrap_zip(tmp_path)
    digest = zip_path.stem
    artifact = Artifact(
        kind="lambda-zip",
        target="lambda",
        digest=f"sha256:{digest}",
        size=zip_path.stat().st_size,
        inputs_hash=digest,
        path=zip_path,
    )
    launch = LocalLaunch(
        server="binary",
        environment="local",
        python="3.12",
        artifact=artifact,
        options=LambdaOptions(arch=host_architecture(), timeout=10),
        mcp_path="/mcp",
        variables={"GREETING": "Hi"},
        secrets={},
        state_dir=tmp_path / "state",
        runtime="binary",
    )
    function = local.function_of(launch)
    assert (function.runtime, function.handler, function.layers) == (
        "provided.al2023",
        "bootstrap",
        (adapter_layer,),
    )
    assert int(function.variables["AWS_LWA_PORT"]) > 0
    handle = local.start_background(launch)
    try:
        base = handle.url.removesuffix("/mcp")
        answer = app(base, "/mcp", "POST", b"{}")
        assert answer["env"]["GREETING"] == "Hi" and answer["path"] == "/mcp"
        assert answer["env"]["AWS_LWA_PORT"] != "8080"
        supervisor = int(handle.data["pid"])
        members = descendants_of(supervisor)
        assert len(members) >= 5, members
    finally:
        local.stop(handle)
    assert gone(members) == []
    assert not local.alive(handle)
    assert "EXTENSION\tName: lambda-adapter\tState: Ready" in local.log_tail(handle, 200)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def descendants_of(pid: int) -> list[int]:
    from targets.aws_lambda.peers import descendants

    return [member for member in descendants([pid]) if member != pid]


def test_the_layer_and_the_function_round_trip(adapter_layer: Path) -> None:
    """What the supervisor receives as JSON is the function it runs."""
    function = LambdaFunction(
        name="f",
        zip_path=Path("/x.zip"),
        python="3.12",
        memory=128,
        timeout=3,
        ephemeral_storage=512,
        region="eu-west-1",
        handler="bootstrap",
        runtime="provided.al2023",
        layers=(adapter_layer, Path("/other")),
    )
    again = LambdaFunction.from_dict(json.loads(json.dumps(function.to_dict())))
    assert again == function and not again.single_process
    python = LambdaFunction("f", Path("/x.zip"), "3.12", 128, 3, 512, "eu-west-1")
    assert python.runtime == "python3.12" and python.single_process
    assert LambdaFunction.from_dict(python.to_dict()) == python
    assert os.access(adapter_layer / "extensions" / "lambda-adapter", os.X_OK)


# -- the Extensions API's answers, one by one (in process) ----------------------------------


def parse(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


def test_the_extensions_api_answers_as_lambda_does() -> None:
    async def scenario() -> None:
        api = ExtensionsAPI("fn", "bootstrap")
        api.begin(["ext-a"])

        async def ask(
            method: str, action: str, headers: dict[str, str], body: bytes = b""
        ) -> tuple[int, dict[str, str], Any]:
            request = Request(method, EXTENSIONS + action, list(headers.items()), body)
            return parse(await api.answer(request))

        def error(answer: tuple[int, dict[str, str], Any]) -> tuple[int, str]:
            return answer[0], answer[2]["errorType"]

        both = b'{"events": ["INVOKE", "SHUTDOWN"]}'
        assert error(await ask("POST", "/register", {}, both)) == (
            403,
            "Extension.InvalidExtensionName",
        )
        name = {"Lambda-Extension-Name": "ext-a", "Lambda-Extension-Accept-Feature": "accountId"}
        status, headers, body = await ask("POST", "/register", name, both)
        assert status == 200
        assert body == {
            "functionName": "fn",
            "functionVersion": "$LATEST",
            "handler": "bootstrap",
            "accountId": "000000000000",
        }
        ident = {"Lambda-Extension-Identifier": headers["Lambda-Extension-Identifier"]}
        again = await ask("POST", "/register", name, both)
        assert error(again) == (403, "Extension.InvalidExtensionState")
        internal = {"Lambda-Extension-Name": "in-process"}
        assert error(await ask("POST", "/register", internal, both)) == (
            403,
            "Extension.InvalidEventType",
        )
        assert (await ask("POST", "/register", internal, b'{"events": ["INVOKE"]}'))[0] == 200
        assert api.all_external_registered() and not api.all_ready()

        for headers_sent, expected in (
            ({}, "Extension.MissingExtensionIdentifier"),
            ({"Lambda-Extension-Identifier": "nope"}, "Extension.InvalidExtensionIdentifier"),
            (
                {"Lambda-Extension-Identifier": "00000000-0000-0000-0000-000000000000"},
                "Extension.UnknownExtensionIdentifier",
            ),
        ):
            assert error(await ask("GET", "/event/next", headers_sent)) == (403, expected)
        assert error(await ask("POST", "/init/error", ident)) == (403, "Extension.MissingHeader")

        waiting = asyncio.ensure_future(ask("GET", "/event/next", ident))
        await asyncio.sleep(0.01)
        assert not waiting.done() and [e.name for e in api.subscribed("SHUTDOWN")] == ["ext-a"]
        api.deliver_invoke("req-1", 123, "arn:fn", "Root=1-x")
        status, headers, event = await waiting
        assert status == 200 and headers["Lambda-Extension-Event-Identifier"]
        assert event == {
            "eventType": "INVOKE",
            "deadlineMs": 123,
            "requestId": "req-1",
            "invokedFunctionArn": "arn:fn",
            "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-x"},
        }
        assert not api.all_ready("INVOKE")  # busy with its event until it asks again
        api.close_registration()
        late = {"Lambda-Extension-Name": "late"}
        assert error(await ask("POST", "/register", late, b"{}")) == (
            403,
            "Extension.RegistrationClosed",
        )
        waiting = asyncio.ensure_future(ask("GET", "/event/next", ident))
        await asyncio.sleep(0.01)
        assert error(await ask("GET", "/event/next", ident)) == (
            403,
            "Extension.InvalidExtensionState",  # one event/next at a time
        )
        api.end()  # the environment is gone: the waiting call is let go
        assert (await waiting)[0] == 403

    asyncio.run(scenario())
