#!/usr/bin/env python3
"""mcp-deploy's local emulations against the same server run directly, for `examples/toolbox`.

Three peers and a reference, side by side in the same run:
(floor)    the server run directly on this machine: uvicorn's CLI, `uvicorn toolbox.app:app
           --host 127.0.0.1 --port P --log-level warning`, under the repo venv's Python (mcp
           2.3.0), in a copy of examples/toolbox, with GREETING and TOOLBOX_API_KEY set; no
           auth. `rich` is hidden from its imports (`sys.modules["rich"] = None`): the repo
           venv has rich (for mcp-deploy's CLI) but neither artifact ships it, and the MCP SDK
           logs a line per request ("Terminating session: None", INFO) through a RichHandler
           when rich is importable, a plain StreamHandler otherwise. Hiding it makes the floor
           log the way the deployed server does.
(venv)     the same, plain `python -m uvicorn …` in the repo venv as it is (RichHandler):
           reported for reference, no goal.
(lambda)   the Lambda zip in mcp-deploy's Lambda emulation (`flow.plan` + `LocalEngine.launch`
           then `runtime.start_background`): a background supervisor with the Function URL front
           door, awslambdaric started by the first request, the shim's bearer check.
(cloudrun) the OCI image run by Docker with Cloud Run's contract (`--network host`, read-only
           root, secrets over the entry shim's stdin), the shim's bearer check.

Conditions. Each artifact is built once (`prepare`, outside every timed region) and each peer
is started once untimed (Docker loads the image, the zip is unpacked, the page cache is warm).
Then every round starts the four in an order shuffled per round; for each one:
cold start: from just before the start (the `Popen` of uvicorn, `runner.start_local`) to the
    first HTTP 200 answer to an MCP `initialize` POST, retried every 5 ms while connections are
    refused. `start_local` returns once the Lambda front door is open (the runtime starts on the
    first request, as a Lambda on-demand cold start does) and once the container's port accepts
    for Cloud Run: the clock runs across it and the polling.
warm calls: then, on the same keep-alive `httpx2.Client`, 20 untimed `tools/call` of
    `add(1, 2)` and N timed ones (default 200), one at a time; each must answer 200 with a
    JSON-RPC `result`. Per round: median and p90.
Reported: per peer, the median across rounds of each figure, and its ratio to the floor. For
Lambda-local, the emulator's log (REPORT lines: init and invocation durations) and, once per
round after the peers, an in-process run of the function (its init steps timed one by one, then
its handler called directly) split the cold start and the warm call between the emulation
(supervisor, front door, Runtime API hops) and the function itself.

Usage: .venv/bin/python bench/local.py [--rounds N] [--calls N]
Goals: Lambda-local warm calls ≤ 1.5x direct uvicorn; Lambda-local cold start ≤ 1.5x the
floor's start-up. Cloud Run-local is reported next to them (no goal). Writes
bench/results/local.md and .json. Needs `scripts/services start` (Docker, registry :5000).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parent.parent
# Run as `python bench/local.py`, bench/ comes first on sys.path, where bench/secrets.py would
# stand in for the standard library's `secrets` in every module imported from here on.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != REPO / "bench"]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx2  # noqa: E402

from bench import _common  # noqa: E402
from orchestrator.deploy import flow, gate  # noqa: E402
from orchestrator.environments import Overrides  # noqa: E402
from orchestrator.local.engine import LocalEngine, runtime_for  # noqa: E402
from orchestrator.paths import ProjectPaths  # noqa: E402
from orchestrator.spec.loader import load_spec  # noqa: E402
from targets.aws_lambda.emulator import unpack_task_root  # noqa: E402
from targets.aws_lambda.events import function_url_event  # noqa: E402
from targets.aws_lambda.local_runtime import runtime_python  # noqa: E402
from targets.base import LocalHandle, LocalLaunch, LocalRuntime  # noqa: E402
from tests.support.debian_base import python_base_image  # noqa: E402
from tests.support.example import example_copy  # noqa: E402

VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PEERS = ["floor", "venv", "lambda", "cloudrun"]
LABELS = {
    "floor": "direct uvicorn (floor)",
    "venv": "direct uvicorn, repo venv as is (RichHandler; reference)",
    "lambda": "Lambda-local",
    "cloudrun": "Cloud Run-local",
}
GOALS = {"lambda_warm": 1.5, "lambda_cold": 1.5}
WARM_UP_CALLS = 20
POLL_SECONDS = 0.005
START_TIMEOUT = 120.0
PROTOCOL = "2025-06-18"
INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    }
).encode()
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
CALL_HEADERS = {**MCP_HEADERS, "mcp-protocol-version": PROTOCOL}
_REPORT = re.compile(
    r"^REPORT RequestId: \S+\tDuration: ([0-9.]+) ms(?:.*\tInit Duration: ([0-9.]+) ms)?"
)
_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


def call_body(request_id: int) -> bytes:
    """A `tools/call` of `add(1, 2)`."""
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 1, "b": 2}},
        }
    ).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the three peers -------------------------------------------------------------------------


class Peer(Protocol):
    name: str

    @property
    def headers(self) -> dict[str, str]:
        """What every request carries besides the MCP headers (the bearer token)."""
        ...

    def start(self) -> str:
        """Start serving; return the MCP endpoint URL (it may not answer yet)."""
        ...

    def failure(self) -> str | None:
        """Why the server cannot answer any more (it exited), else None."""
        ...

    def stop(self) -> None: ...


# uvicorn's CLI (what `python -m uvicorn` runs) with rich unimportable; the current directory
# is first on sys.path with -c as with -m.
_NO_RICH = (
    "import sys; sys.modules['rich'] = None; sys.argv[0] = 'uvicorn'; "
    "from uvicorn.main import main; main()"
)


@dataclass
class Floor:
    """uvicorn serving the app directly, in its own process group."""

    name: str
    project: Path
    env: dict[str, str]
    log: Path
    hide_rich: bool
    process: subprocess.Popen[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {}

    def start(self) -> str:
        port = free_port()
        argv = [str(VENV_PYTHON), *(["-c", _NO_RICH] if self.hide_rich else ["-m", "uvicorn"])]
        argv += ["toolbox.app:app", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--log-level", "warning"]
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                argv,
                cwd=self.project,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return f"http://127.0.0.1:{port}/mcp"

    def failure(self) -> str | None:
        if self.process is None or self.process.poll() is None:
            return None
        return f"uvicorn exited ({self.process.returncode}):\n{tail(self.log)}"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the group this run started
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@dataclass(frozen=True)
class Prepared:
    """A launch ready to start in its target's local runtime (secret values in `launch`)."""

    runner: LocalRuntime
    launch: LocalLaunch
    token: str | None


def prepare(loaded: Any, target: str, overrides: Overrides, progress: Any, port: int) -> Prepared:
    """What `mcp-deploy --target T --env local` would start: the flow's own request (built
    through `flow.plan`), made runnable by the local engine."""
    request = flow.plan(loaded, "local", target, overrides, progress).request
    launch = LocalEngine(ProjectPaths(loaded.root)).launch(request, port)
    return Prepared(runtime_for(target), launch, gate.environment_token(loaded, "local"))


@dataclass
class Emulated:
    """An mcp-deploy artifact in its target's local emulation."""

    name: str
    prepared: Prepared
    handle: LocalHandle | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.prepared.token}"}

    def start(self) -> str:
        self.handle = self.prepared.runner.start_background(self.prepared.launch)
        return self.handle.url

    def failure(self) -> str | None:
        if self.handle is None or self.prepared.runner.alive(self.handle):
            return None
        return f"{self.name} stopped:\n{self.prepared.runner.log_tail(self.handle, 30)}"

    def stop(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            self.prepared.runner.stop(handle)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- one cold start and its warm calls -------------------------------------------------------


@dataclass
class Sample:
    """One round of one peer. Seconds for the start-up figures, milliseconds for the calls."""

    cold: float  # start to the first 200 answer to initialize
    started: float  # start to the return of Popen / start_local
    calls_ms: list[float] = field(default_factory=list)
    reports_ms: list[float] = field(default_factory=list)  # Lambda: REPORT Duration, timed calls
    init_ms: float | None = None  # Lambda: INIT (runtime spawn to its first poll)
    first_invocation_ms: float | None = None  # Lambda: REPORT Duration of the initialize

    @property
    def warm_median(self) -> float:
        return statistics.median(self.calls_ms)

    @property
    def warm_p90(self) -> float:
        return p90(self.calls_ms)


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def initialize(client: httpx2.Client, peer: Peer, url: str, start: float) -> None:
    """Retry `initialize` every POLL_SECONDS until it is answered 200 (connection refused,
    or reset while the server comes up, are retried; any other status is an error)."""
    headers = {**MCP_HEADERS, **peer.headers}
    while True:
        try:
            response = client.post(url, content=INITIALIZE, headers=headers)
        except httpx2.TransportError:
            response = None
        if response is not None:
            if response.status_code != 200:
                raise RuntimeError(
                    f"{peer.name}: initialize answered {response.status_code}: "
                    f"{response.text[:500]}"
                )
            if not response.json().get("result", {}).get("serverInfo"):
                raise RuntimeError(f"{peer.name}: initialize answer {response.text[:500]}")
            return
        failure = peer.failure()
        if failure is not None:
            raise RuntimeError(failure)
        if time.perf_counter() - start > START_TIMEOUT:
            raise RuntimeError(f"{peer.name}: no answer to initialize in {START_TIMEOUT:.0f} s")
        time.sleep(POLL_SECONDS)


def run_peer(peer: Peer, calls: int) -> Sample:
    """One cold start of `peer`, then WARM_UP_CALLS + `calls` sequential tools/call."""
    headers = {**CALL_HEADERS, **peer.headers}
    with httpx2.Client(trust_env=False, timeout=60.0) as client:
        try:
            start = time.perf_counter()
            url = peer.start()
            started = time.perf_counter() - start
            initialize(client, peer, url, start)
            cold = time.perf_counter() - start
            sample = Sample(cold=cold, started=started)
            for request_id in range(2, 2 + WARM_UP_CALLS + calls):
                body = call_body(request_id)
                before = time.perf_counter()
                response = client.post(url, content=body, headers=headers)
                elapsed = time.perf_counter() - before
                answer = response.json() if response.status_code == 200 else {}
                if "result" not in answer or answer["result"].get("isError"):
                    raise RuntimeError(
                        f"{peer.name}: tools/call answered {response.status_code}: "
                        f"{response.text[:500]}"
                    )
                if request_id >= 2 + WARM_UP_CALLS:
                    sample.calls_ms.append(elapsed * 1000)
            return sample
        finally:
            peer.stop()


def lambda_reports(log: Path, offset: int, calls: int, sample: Sample) -> None:
    """Fill `sample` from the REPORT lines the emulator wrote after `offset`: the first is the
    initialize (with the Init Duration), the last `calls` are the timed calls."""
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    reports = [match for line in text.splitlines() if (match := _REPORT.match(line))]
    if len(reports) != 1 + WARM_UP_CALLS + calls:
        raise RuntimeError(
            f"expected {1 + WARM_UP_CALLS + calls} REPORT lines, found {len(reports)}"
        )
    first = reports[0]
    sample.first_invocation_ms = float(first.group(1))
    sample.init_ms = float(first.group(2)) if first.group(2) else None
    sample.reports_ms = [float(match.group(1)) for match in reports[-calls:]]


# -- the handler alone -----------------------------------------------------------------------

_IN_PROCESS = """
import time
started = time.time()
import json, sys
events = json.load(sys.stdin)
marks = [time.perf_counter()]
import awslambdaric.bootstrap
marks.append(time.perf_counter())
import boto3
boto3.client("secretsmanager", region_name="us-east-1")
marks.append(time.perf_counter())
import mcp_deploy_lambda
marks.append(time.perf_counter())
from awslambdaric import bootstrap
from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

class Client:  # awslambdaric's runtime client, minus the Runtime API's HTTP
    marshaller = LambdaMarshaller()
    def post_invocation_result(self, invoke_id, result, content_type, invocation_id=None):
        self.result = result
    def post_invocation_error(self, invoke_id, error, xray_fault, invocation_id=None):
        sys.exit("handler failed: " + str(error)[:500])

client, sink = Client(), bootstrap.create_log_sink()
arn = "arn:aws:lambda:us-east-1:000000000000:function:bench"
calls, loop_calls = [], []
for number, event in enumerate(events):
    before = time.perf_counter()
    response = mcp_deploy_lambda.handler(event, None)
    calls.append((time.perf_counter() - before) * 1000)
    if response.get("statusCode") != 200 or '"result"' not in response.get("body", ""):
        sys.exit("handler answered: " + json.dumps(response)[:500])
    # The same call as awslambdaric's loop makes it, without its two HTTP requests: the
    # event's JSON as the Runtime API sends it, decoded, the context, the result encoded.
    body, request_id = json.dumps(event).encode(), f"request-{number}"
    before = time.perf_counter()
    bootstrap.update_xray_env_variable("Root=1-00000000-000000000000000000000000;Sampled=0")
    bootstrap.handle_event_request(
        client, mcp_deploy_lambda.handler, request_id, body, "application/json", None, None,
        arn, str(int(time.time() * 1000) + 30000), None, sink,
    )
    loop_calls.append((time.perf_counter() - before) * 1000)
    if '"result"' not in json.loads(client.result).get("body", ""):
        sys.exit("handler answered: " + client.result[:500].decode(errors="replace"))
steps = [later - earlier for earlier, later in zip(marks, marks[1:])]
print(json.dumps({"started": started, "steps": steps, "calls_ms": calls, "loop_ms": loop_calls}))
"""


@dataclass
class InProcess:
    """The Lambda function without the emulator: its init steps (seconds) and its handler's
    warm calls (milliseconds), in the runtime's Python with the zip's task root."""

    interpreter: float  # spawn to the first line of the script (interpreter + site)
    awslambdaric: float  # import awslambdaric.bootstrap
    boto3: float  # import boto3 and make a Secrets Manager client (what the shim does)
    shim_and_app: float  # import mcp_deploy_lambda: shim, the app, its lifespan entered
    calls_ms: list[float]
    loop_ms: list[float]  # the same calls through awslambdaric's handle_event_request, no HTTP


def in_process(prepared: Prepared, work: Path, api_key: str, calls: int) -> InProcess:
    """Spawn the runtime's Python in the unpacked task root, time its imports the way the
    runtime's init runs them (awslambdaric; the shim's boto3 client; the shim and the app),
    then call `mcp_deploy_lambda.handler(event, None)` WARM_UP_CALLS + `calls` times with the
    events the front door would make: no Runtime API, no front door, no other process."""
    task_root = unpack_task_root(prepared.launch.artifact.path, work / "task-roots")
    headers = {**CALL_HEADERS, "authorization": f"Bearer {prepared.token}"}
    events = [
        function_url_event("POST", "/mcp", headers=headers, body=call_body(request_id))
        for request_id in range(2, 2 + WARM_UP_CALLS + calls)
    ]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "LAMBDA_TASK_ROOT": str(task_root),
        **prepared.launch.variables,
        "MCP_AUTH_TOKEN": prepared.token or "",
        "TOOLBOX_API_KEY": api_key,
    }
    spawned = time.time()
    done = subprocess.run(
        [str(runtime_python(prepared.launch.python)), "-c", _IN_PROCESS],
        cwd=task_root,
        env=env,
        input=json.dumps(events).encode(),
        capture_output=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the handler in-process failed: {done.stderr.decode()[-2000:]}")
    found: dict[str, Any] = json.loads(done.stdout)
    ric, boto3, app = found["steps"]
    return InProcess(
        interpreter=found["started"] - spawned,
        awslambdaric=ric,
        boto3=boto3,
        shim_and_app=app,
        calls_ms=found["calls_ms"][WARM_UP_CALLS:],
        loop_ms=found["loop_ms"][WARM_UP_CALLS:],
    )


# -- the run ---------------------------------------------------------------------------------


def docker_tags() -> set[str]:
    """Every `repository:tag` the engine holds."""
    listed = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(listed.split())


def untag_loaded(tag: str, before: set[str]) -> None:
    """Remove `tag` (the image `load_image` loaded: `mcp-deploy/<server>:<digest>`) when this
    run made it; Docker deletes the image with its last tag."""
    if tag not in before:
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)


def measure(args: argparse.Namespace, work: Path, cleanup: ExitStack) -> dict[str, Any]:
    rng = random.Random(0)
    token, api_key = os.urandom(16).hex(), os.urandom(16).hex()
    os.environ["TOOLBOX_LOCAL_TOKEN"] = token
    os.environ["TOOLBOX_LOCAL_API_KEY"] = api_key

    progress("building (or reusing) both artifacts in a copy of examples/toolbox")
    spec = example_copy(work / "toolbox", image_base=True)
    loaded = load_spec(spec)
    tags_before = docker_tags()
    prepared = {
        target: prepare(loaded, target, Overrides(), progress=lambda _: None, port=0)
        for target in ("lambda", "cloudrun")
    }
    launch = prepared["cloudrun"].launch
    image = f"mcp-deploy/{launch.server}:{launch.artifact.digest.removeprefix('sha256:')[:12]}"
    cleanup.callback(untag_loaded, image, tags_before)
    floor_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "GREETING": "Hello",
        "TOOLBOX_API_KEY": api_key,
    }
    peers: dict[str, Peer] = {
        "floor": Floor("floor", spec.parent, floor_env, work / "floor.log", hide_rich=True),
        "venv": Floor("venv", spec.parent, floor_env, work / "venv.log", hide_rich=False),
        "lambda": Emulated("lambda", prepared["lambda"]),
        "cloudrun": Emulated("cloudrun", prepared["cloudrun"]),
    }
    for peer in peers.values():
        cleanup.callback(peer.stop)
    # The emulator's CloudWatch-like log, started afresh by every start.
    lambda_log = prepared["lambda"].launch.state_dir / "lambda.log"

    def one(name: str) -> Sample:
        sample = run_peer(peers[name], args.calls)
        if name == "lambda":
            lambda_reports(lambda_log, 0, args.calls, sample)
        return sample

    progress("one untimed start of each (image load, task root unpack, page cache)")
    for name in PEERS:
        one(name)

    samples: dict[str, list[Sample]] = {name: [] for name in PEERS}
    alone: list[InProcess] = []
    orders: list[list[str]] = []
    for round_number in range(1, args.rounds + 1):
        order = list(PEERS)
        rng.shuffle(order)
        orders.append(order)
        for name in order:
            samples[name].append(one(name))
        alone.append(in_process(prepared["lambda"], work, api_key, args.calls))
        progress(
            f"round {round_number}/{args.rounds}: "
            + ", ".join(
                f"{name} cold {samples[name][-1].cold:.2f}s warm "
                f"{samples[name][-1].warm_median:.2f}ms"
                for name in order
            )
            + f"; Lambda handler in-process {statistics.median(alone[-1].calls_ms):.2f}ms"
        )

    in_image = ["docker", "run", "--rm", "--network", "host", "--entrypoint", "python3", image]
    interpreters = {
        "floor": interpreter([str(VENV_PYTHON)]),
        "lambda": interpreter([str(runtime_python(prepared["lambda"].launch.python))]),
        "cloudrun": interpreter(in_image),
    }
    return {
        "samples": samples,
        "orders": orders,
        "in_process": alone,
        "base": python_base_image(),
        "artifacts": {
            target: {
                "kind": found.launch.artifact.kind,
                "digest": found.launch.artifact.digest,
            }
            for target, found in prepared.items()
        },
        "interpreters": interpreters,
    }


# -- results ---------------------------------------------------------------------------------


def results(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    samples: dict[str, list[Sample]] = data["samples"]

    def median_of(name: str, figure: Callable[[Sample], float]) -> float:
        return statistics.median(figure(sample) for sample in samples[name])

    peers: dict[str, dict[str, Any]] = {}
    for name in PEERS:
        peers[name] = {
            "label": LABELS[name],
            "cold_start_s": round(median_of(name, lambda s: s.cold), 4),
            "start_returned_s": round(median_of(name, lambda s: s.started), 4),
            "warm_median_ms": round(median_of(name, lambda s: s.warm_median), 4),
            "warm_p90_ms": round(median_of(name, lambda s: s.warm_p90), 4),
            "rounds": [
                {
                    "cold_start_s": round(s.cold, 4),
                    "start_returned_s": round(s.started, 4),
                    "warm_median_ms": round(s.warm_median, 4),
                    "warm_p90_ms": round(s.warm_p90, 4),
                    "warm_min_ms": round(min(s.calls_ms), 4),
                    "warm_max_ms": round(max(s.calls_ms), 4),
                }
                for s in samples[name]
            ],
        }
    floor = peers["floor"]
    for entry in peers.values():
        for mine, base in zip(entry["rounds"], floor["rounds"], strict=True):
            mine["cold_start_ratio_same_round"] = round(
                mine["cold_start_s"] / base["cold_start_s"], 3
            )
            mine["warm_median_ratio_same_round"] = round(
                mine["warm_median_ms"] / base["warm_median_ms"], 3
            )
        entry["cold_start_ratio"] = round(entry["cold_start_s"] / floor["cold_start_s"], 3)
        entry["warm_median_ratio"] = round(entry["warm_median_ms"] / floor["warm_median_ms"], 3)
        entry["warm_p90_ratio"] = round(entry["warm_p90_ms"] / floor["warm_p90_ms"], 3)

    lam = samples["lambda"]
    alone: list[InProcess] = data["in_process"]

    def seconds(figure: Callable[[InProcess], float]) -> float:
        return round(statistics.median(figure(run) for run in alone), 4)

    handler = statistics.median(statistics.median(run.calls_ms) for run in alone)
    through_loop = statistics.median(statistics.median(run.loop_ms) for run in alone)
    report = statistics.median(statistics.median(s.reports_ms) for s in lam)
    observed = peers["lambda"]["warm_median_ms"]
    init = [s.init_ms for s in lam if s.init_ms is not None]
    first = [s.first_invocation_ms for s in lam if s.first_invocation_ms is not None]
    peers["lambda"]["breakdown"] = {
        "warm_call_ms": {
            "observed": observed,
            "report_duration": round(report, 4),
            "handler_in_process": round(handler, 4),
            # awslambdaric's per-invocation work around the handler, minus its HTTP requests
            # (event decoded, context, X-Ray variable, result encoded), timed in-process
            "awslambdaric_loop": round(through_loop - handler, 4),
            "runtime_api_hops": round(report - handler, 4),
            # the hops less that: both HTTP exchanges (libcurl, the kernel, the emulator)
            "runtime_api_http": round(report - through_loop, 4),
            "front_door_and_client": round(observed - report, 4),
        },
        "cold_start_s": {
            "start_local_returned": peers["lambda"]["start_returned_s"],
            "init_duration": round(statistics.median(init) / 1000, 4) if init else None,
            "first_invocation_duration": (
                round(statistics.median(first) / 1000, 4) if first else None
            ),
            # per round: the cold start less start_local, Init Duration and the first
            # invocation (front door, event, poll interval); the median of those
            "remainder": round(
                statistics.median(
                    s.cold - s.started - ((s.init_ms or 0) + (s.first_invocation_ms or 0)) / 1000
                    for s in lam
                ),
                4,
            ),
        },
        "init_in_process_s": {
            "interpreter": seconds(lambda run: run.interpreter),
            "import_awslambdaric": seconds(lambda run: run.awslambdaric),
            "boto3_secrets_manager_client": seconds(lambda run: run.boto3),
            "shim_and_app": seconds(lambda run: run.shim_and_app),
        },
        "report_rounds_ms": [round(statistics.median(s.reports_ms), 4) for s in lam],
        "handler_in_process_rounds_ms": [
            round(statistics.median(run.calls_ms), 4) for run in alone
        ],
        "handler_in_process_p90_ms": round(
            statistics.median(p90(run.calls_ms) for run in alone), 4
        ),
    }
    goals = [
        {
            "goal": "Lambda-local warm calls ≤ 1.5x direct uvicorn (median per call)",
            "limit": GOALS["lambda_warm"],
            "ratio": peers["lambda"]["warm_median_ratio"],
            "met": peers["lambda"]["warm_median_ratio"] <= GOALS["lambda_warm"],
        },
        {
            "goal": "Lambda-local cold start ≤ 1.5x the floor's start-up",
            "limit": GOALS["lambda_cold"],
            "ratio": peers["lambda"]["cold_start_ratio"],
            "met": peers["lambda"]["cold_start_ratio"] <= GOALS["lambda_cold"],
        },
    ]
    docker = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "rounds": args.rounds,
            "calls_per_round": args.calls,
            "warm_up_calls": WARM_UP_CALLS,
            "machine": _common.machine(),
            "interpreters": data["interpreters"],
            "docker": docker,
            "cloudrun_base": data["base"],
            "artifacts": data["artifacts"],
            "orders": data["orders"],
            "runtime_seconds": round(time.monotonic() - _STARTED, 1),
        },
        "peers": peers,
        "goals": goals,
    }


def markdown(result: dict[str, Any]) -> str:
    meta, peers = result["meta"], result["peers"]
    lines = [
        "# Local emulations: Lambda-local and Cloud Run-local against the server run directly",
        "",
        f"Measured {meta['date']} by `bench/local.py` on {meta['machine']}, Docker "
        f"{meta['docker']}: {meta['rounds']} rounds, each starting the four peers once in an "
        f"order shuffled per round (after one untimed start of each); per start one cold start "
        f"and {meta['calls_per_round']} warm `tools/call` of `add` (after "
        f"{meta['warm_up_calls']} untimed), one at a time on a keep-alive connection; medians "
        f"across rounds. The example server `examples/toolbox` (mcp 2.3.0). Run time "
        f"{meta['runtime_seconds']:.0f} s.",
        "",
        "| peer | cold start to first MCP response | ratio to floor | warm call, median "
        "| ratio to floor | warm call, p90 | ratio to floor |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for entry in peers.values():
        lines.append(
            f"| {entry['label']} | {entry['cold_start_s']:.3f} s | "
            f"{entry['cold_start_ratio']:.2f}x | {entry['warm_median_ms']:.2f} ms | "
            f"{entry['warm_median_ratio']:.2f}x | {entry['warm_p90_ms']:.2f} ms | "
            f"{entry['warm_p90_ratio']:.2f}x |"
        )
    lines += ["", "| goal | measured | result |", "| --- | ---: | --- |"]
    for goal in result["goals"]:
        lines.append(
            f"| {goal['goal']} | {goal['ratio']:.2f}x | "
            f"≤ {goal['limit']}x — {'met' if goal['met'] else 'NOT met'} |"
        )
    lines += ["", "Per round (cold start s / warm median ms):", ""]
    for entry in peers.values():
        rounds = ", ".join(
            f"{r['cold_start_s']:.3f} / {r['warm_median_ms']:.2f}" for r in entry["rounds"]
        )
        lines.append(f"- {entry['label']}: {rounds}")
    for name in ("lambda", "cloudrun"):
        entry = peers[name]
        colds = ", ".join(f"{r['cold_start_ratio_same_round']:.2f}" for r in entry["rounds"])
        warms = ", ".join(f"{r['warm_median_ratio_same_round']:.2f}" for r in entry["rounds"])
        lines.append(
            f"- {entry['label']} ÷ floor, same round: cold start {colds}; warm median {warms}"
        )
    lines += reading(result)
    lines += [
        "",
        "## Conditions",
        "",
        "- **Floor.** uvicorn's CLI, `uvicorn toolbox.app:app --host 127.0.0.1 --port P "
        f"--log-level warning`, with the repo venv's Python {meta['interpreters']['floor']} "
        "and packages, in a copy of examples/toolbox, env GREETING=Hello and TOOLBOX_API_KEY "
        "(random); no auth. Its own process group, stopped with SIGTERM. Run as `python -c "
        "\"import sys; sys.modules['rich'] = None; …; from uvicorn.main import main; main()\" "
        'toolbox.app:app …`: the MCP SDK logs one INFO line per request ("Terminating '
        'session: None") through a RichHandler when rich is importable, a plain '
        "StreamHandler otherwise; the repo venv has rich (mcp-deploy's CLI uses it), neither "
        "artifact does, so the floor hides it to log as the deployed server logs. The "
        "reference row runs plain `python -m uvicorn …` in the venv as it is.",
        '- **Lambda-local.** `flow.plan(spec, "local", "lambda", …)` and `LocalEngine.launch` '
        "once, then per start `runtime.start_background(launch)` / `stop`: the background "
        "supervisor "
        "(`python -m targets.aws_lambda.supervisor`), the Function URL front door on a free port, "
        f"awslambdaric on Python {meta['interpreters']['lambda']}, started by the first request "
        "with the task root read-only and a tmpfs /tmp, the secrets read by the shim from the "
        "loopback Secrets Manager stand-in at init, the bearer token checked on every call.",
        '- **Cloud Run-local.** The same with `"cloudrun"`: the image (base: the tests\' Debian '
        f"Python base, `{meta['cloudrun_base']}`) loaded into Docker once, then per start a "
        "container created and started through the Docker SDK with Cloud Run's contract "
        "(`--network host`, PORT, K_*, read-only root, tmpfs /tmp, memory/CPU limits, secrets "
        "over the entry shim's stdin); `start_local` returns once the port accepts; stop is "
        "SIGTERM with Cloud Run's grace, then the container is removed. Bearer token checked. "
        f"Python {meta['interpreters']['cloudrun']} (Debian 12's python3.11).",
        "- **Cold start.** `time.perf_counter()` just before the `Popen` / `start_local` to the "
        "first HTTP 200 answer to an MCP `initialize` POST (protocol 2025-06-18; "
        "`accept: application/json, text/event-stream`), retried every 5 ms while the "
        "connection is refused. For Lambda this covers the supervisor's start, the runtime's "
        "init and the first invocation, as an on-demand Lambda cold start does.",
        "- **Warm calls.** On the same `httpx2.Client` (keep-alive, `trust_env=False`), "
        f"{meta['warm_up_calls']} untimed then {meta['calls_per_round']} timed `tools/call` "
        'POSTs of `add` with `{"a": 1, "b": 2}`, ids increasing, header '
        "`mcp-protocol-version: 2025-06-18`; each must answer 200 with a JSON-RPC `result`. "
        "Time per call: the POST until its body is read. Median and p90 per round, then the "
        "median of those across rounds.",
        "- **Lambda breakdown.** From `lambda.log`: REPORT Duration, the emulator's own "
        "timing of each invocation (event queued on the Runtime API → outcome posted back), "
        "and Init Duration (runtime spawned → its first poll). In-process, once per round "
        "after the peers: the runtime's Python spawned in the unpacked task root, timing "
        '`import awslambdaric.bootstrap`, `import boto3` + `boto3.client("secretsmanager")`, '
        "`import mcp_deploy_lambda` (shim, app, lifespan; secrets given as env vars), then "
        f"{meta['warm_up_calls']} + {meta['calls_per_round']} calls of "
        "`mcp_deploy_lambda.handler(event, None)` with the events the front door would make: "
        "no Runtime API, no front door; each call followed by the same call through "
        "awslambdaric's `handle_event_request` (its X-Ray variable set first) with a runtime "
        "client that makes no HTTP request. Medians across rounds.",
        "",
    ]
    return "\n".join(lines)


def reading(result: dict[str, Any]) -> list[str]:
    """What dominates each figure, with this run's numbers (the explanations come from the
    code paths; the numbers from the log and the in-process runs)."""
    peers = result["peers"]
    floor, venv, lam, run = peers["floor"], peers["venv"], peers["lambda"], peers["cloudrun"]
    warm = lam["breakdown"]["warm_call_ms"]
    cold = lam["breakdown"]["cold_start_s"]
    alone = lam["breakdown"]["init_in_process_s"]
    init = cold["init_duration"] or 0.0
    first = cold["first_invocation_duration"] or 0.0
    rest = cold["remainder"]
    measured = sum(alone.values())
    over_floor = lam["cold_start_s"] - floor["cold_start_s"]
    extra = cold["start_local_returned"] + alone["import_awslambdaric"]
    extra += alone["boto3_secrets_manager_client"]
    hops = warm["runtime_api_hops"] + warm["front_door_and_client"]
    handler = warm["handler_in_process"]
    budget = GOALS["lambda_warm"] * floor["warm_median_ms"]
    return [
        "",
        "## Reading",
        "",
        f"- **Floor.** {floor['cold_start_s']:.3f} s to the first answer: one interpreter "
        "starting and importing uvicorn, the MCP SDK (pydantic, starlette, …) and the app, "
        f"then binding. A warm call ({floor['warm_median_ms']:.2f} ms): uvicorn parsing one "
        "HTTP request (h11), the SDK's stateless streamable-HTTP transport set up and torn "
        "down for it, the tool run, and the SDK's one INFO log line. The reference row "
        f"({venv['warm_median_ms']:.2f} ms, {venv['cold_start_s']:.3f} s) is the same with "
        "that line rendered by rich's RichHandler, as the repo venv does it.",
        f"- **Lambda-local cold start** ({lam['cold_start_s']:.3f} s, "
        f"{over_floor:+.3f} s on the floor): `start_local` returns after "
        f"{cold['start_local_returned']:.3f} s (the supervisor: a second interpreter importing "
        "the emulator, then the front door, Runtime API and Secrets Manager stand-in opened); "
        f"the runtime's init (REPORT Init Duration) then takes {init:.3f} s, and the first "
        f"invocation {first:.3f} s; the rest ({rest:.3f} s, median per round) is the front "
        "door, the event and the 5 ms poll. The same init steps timed in-process (medians): "
        f"the interpreter {alone['interpreter']:.3f} s, `import awslambdaric.bootstrap` "
        f"{alone['import_awslambdaric']:.3f} s, `import boto3` and a Secrets Manager client "
        f"(the shim's secret read) {alone['boto3_secrets_manager_client']:.3f} s, the shim "
        f"with the app imported and its lifespan entered {alone['shim_and_app']:.3f} s "
        f"({measured:.3f} s in all; the rest of Init Duration is `unshare` and the mounts, "
        "the two Secrets Manager calls over loopback, and awslambdaric's first poll). The "
        "parts the floor does not have — the supervisor, awslambdaric, boto3 — add up to "
        f"{extra:.3f} s, against the {over_floor:+.3f} s measured (the floor, in turn, "
        "imports uvicorn, which the runtime does not).",
        f"- **Lambda-local warm call** ({warm['observed']:.2f} ms): the handler itself costs "
        f"{warm['handler_in_process']:.2f} ms in-process (the bearer check, Mangum's "
        "event↔ASGI translation, the same app and transport as the floor, no HTTP parsing; "
        "Mangum runs each call as a task of its own, so the worker thread the SDK runs a sync "
        "tool in is started and ended per call, where uvicorn keeps it). "
        f"The Runtime API hops add {warm['runtime_api_hops']:.2f} ms (REPORT Duration "
        f"{warm['report_duration']:.2f} ms, from the event queued to the response posted). "
        f"Of that, awslambdaric's own work around the handler is {warm['awslambdaric_loop']:.2f}"
        " ms (timed in-process through its `handle_event_request`: the event's JSON decoded, "
        "the context, the X-Ray variable, the result encoded), and "
        f"{warm['runtime_api_http']:.2f} ms the two HTTP exchanges: the parked long-poll "
        "answered with the event in the step that queues it, then the response POSTed back "
        "by libcurl (head and body in two writes) and answered 202 after the caller's answer "
        "has gone out. The front door "
        f"adds {warm['front_door_and_client']:.2f} ms (the same loop reading the request, "
        "building the Function URL event, mapping the response back to HTTP, plus the "
        "client's side of that exchange). The emulator's Python on the path is a few tens of "
        "µs (event, JSON, headers); the rest is the kernel's: a loopback TCP write runs the "
        "receiving side's TCP and wakes its process in the writer's time slice, once per hop. "
        f"{hops:.2f} ms of each call is the emulated "
        "platform: two processes and three HTTP exchanges where the floor has one of each. "
        f"Within 1.5x the floor ({budget:.2f} ms), with the handler as it is, the front door "
        f"and the Runtime API together would have to take {budget - handler:.2f} ms.",
        f"- **Cloud Run-local** ({run['cold_start_s']:.3f} s cold, "
        f"{run['warm_median_ms']:.2f} ms warm): `start_local` returns after "
        f"{run['start_returned_s']:.3f} s — a Docker SDK client, the container created and "
        "started, the entry shim reading its secrets from stdin, uvicorn and the app imported "
        "in the container (Debian's Python, see Conditions), the port polled every 50 ms — "
        "then one initialize. A warm call is the floor's path (uvicorn, same app) plus the "
        "shim's bearer check and uvicorn's access log line (log level info), over the host "
        f"network: no extra hop. Those, and a different interpreter build, are the "
        f"{run['warm_median_ms'] - floor['warm_median_ms']:+.2f} ms on the floor.",
    ]


_BUILD = (
    "import os, platform, sys; "
    "print(f'{platform.python_version()} at {os.path.realpath(sys.executable)}')"
)


def interpreter(prefix: list[str]) -> str:
    """`prefix` (a python, or `docker run … python3`) describing itself, '?' on failure."""
    done = subprocess.run(
        [*prefix, "-c", _BUILD], capture_output=True, text=True, check=False, timeout=120
    )
    return done.stdout.strip() or "?"


def main() -> int:
    return _common.run_start_bench("local", __doc__, measure, results, markdown, progress)


if __name__ == "__main__":
    sys.exit(main())
