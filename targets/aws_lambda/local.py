"""`--env local` for Lambda: the emulator (`emulator.py`) in the foreground or in a background
supervisor process that outlives the CLI.

A Python server runs under its managed runtime (`python3.x`). A binary server
(`server.runtime = "binary"`) runs as in the cloud: runtime `provided.al2023`, handler
`bootstrap` (the zip's launcher), and AWS's Lambda Web Adapter layer, here built from its
crate (`web_adapter.py`: once per machine, before the emulator starts, so the build is not
counted against the start timeout). A Node server (`server.runtime = "node"`) runs under the
managed `nodejs{major}.x` runtime (`node_runtime.py`, also set up before the start): handler
`index.handler` (the zip's bundle), or, when the zip has the launcher (`bootstrap`), handler
`bootstrap` with the Web Adapter layer and `AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap`, which
makes the runtime start the launcher instead of its runtime client. The one difference from
the cloud: the adapter and the launcher meet on a free loopback port chosen per deployment
(`AWS_LWA_PORT`), not on the adapter's default 8080, which two local deployments would both
want. A variable the user configures (`AWS_LWA_PORT` too) wins.

Where else this emulation differs from the cloud: the function (every runtime: Python, binary,
Node) gets `MCP_DEPLOY_PUBLIC_URL=http://127.0.0.1:<port>`, the loopback URL the client uses,
because the front door presents the Function URL's domain (`function_url_host`) and the
gate's public base URL — the audience of oauth tokens, the resource in the Protected Resource
Metadata, the Origin allowed without listing it — must be the URL the client actually called.
In the cloud it is unset and the gate takes `https://` + the Function URL's domain. A value
the user configures wins here too (e.g. the URL of their own proxy in front of the emulation).

The background supervisor is `python -m targets.aws_lambda.supervisor`. It reads its request — the
function, the secret values, the port and the log path — as JSON on stdin (never from a file,
an argument or an environment variable), answers `{"url": ...}` or `{"error": ...}` on stdout
once the front door is open, then serves until SIGTERM. It runs in its own session, so stopping
its process group ends the runtime too (which also dies with it, through PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from orchestrator import processes
from orchestrator.errors import OperationError
from targets.aws_lambda.emulator import LambdaEmulator, LambdaFunction
from targets.aws_lambda.events import URL_ID
from targets.base import (
    LocalHandle,
    LocalLaunch,
    LocalProblem,
    TargetOptions,
    host_architecture,
)

if TYPE_CHECKING:
    from targets.aws_lambda.node_runtime import NodeRuntime

START_TIMEOUT = 60.0
PORT_ATTEMPTS = 3
DEFAULT_NODE_MAJOR = "22"
NODE_HANDLER = "index.handler"  # the bundle of an entry server (stacks/_aws_lambda_runtime.py)
LAUNCHER = "bootstrap"  # mcp-deploy's launcher at the zip's root
EXEC_WRAPPER = "/opt/bootstrap"  # the Web Adapter layer's wrapper
STOP_GRACE = 5.0
# What the supervisor keeps of the CLI's environment (not the variables secrets come from).
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "XDG_CACHE_HOME", "MCP_DEPLOY_CACHE_DIR")
PUBLIC_URL_VARIABLE = "MCP_DEPLOY_PUBLIC_URL"  # read by every gate (Python, Node, launcher)


def problem(options: TargetOptions, runtime: str = "python") -> LocalProblem | None:
    """The zip runs natively: its architecture must be this machine's."""
    from targets.aws_lambda import LambdaOptions

    assert isinstance(options, LambdaOptions)
    host = host_architecture()
    if options.arch == host:
        return None
    return LocalProblem(
        "arch",
        f"the zip is built for {options.arch} and this machine is {host}: the local "
        "emulation runs the very artifact that ships, natively",
        f'set targets.lambda.arch = "{host}" to prove this artifact here, or deploy --env '
        f"local from an {options.arch} machine",
    )


def function_of(
    launch: LocalLaunch, progress: Callable[[str], None] | None = None
) -> LambdaFunction:
    """The function as the emulator runs it. For a binary server, or a Node server whose zip
    holds the launcher (`node_function_of`, Node major `launch.runtime_version`, else 22),
    this builds the Lambda Web Adapter layer first when this machine has not got it
    (`progress` hears about it; stderr by default)."""
    from targets.aws_lambda import LambdaOptions

    options = launch.options
    assert isinstance(options, LambdaOptions)
    name = f"{launch.server}-{launch.environment}"
    region = options.region or "us-east-1"
    if launch.runtime == "node":
        with zipfile.ZipFile(launch.artifact.path) as archive:
            launcher = LAUNCHER in archive.namelist()
        major = launch.runtime_version or DEFAULT_NODE_MAJOR
        return node_function_of(launch, major, web_adapter=launcher, progress=progress)
    python = LambdaFunction(
        name=name,
        zip_path=launch.artifact.path,
        python=launch.python,
        memory=options.memory,
        timeout=options.timeout,
        ephemeral_storage=options.ephemeral_storage,
        region=region,
        variables=dict(launch.variables),
        runtime=f"python{launch.python}",
    )
    if launch.runtime != "binary":
        return python
    from targets.aws_lambda.web_adapter import web_adapter_layer

    return dataclasses.replace(
        python,
        variables={"AWS_LWA_PORT": str(_free_port()), **launch.variables},
        handler="bootstrap",
        runtime="provided.al2023",
        layers=(web_adapter_layer(progress or _to_stderr),),
    )


def node_function_of(
    launch: LocalLaunch,
    major: str,
    *,
    web_adapter: bool,
    progress: Callable[[str], None] | None = None,
) -> LambdaFunction:
    """A Node server's function on the managed `nodejs{major}.x` runtime: handler
    `index.handler`, or with `web_adapter` (the zip holds the launcher) handler `bootstrap`,
    the Lambda Web Adapter layer (built first when missing) and the exec wrapper that runs
    the launcher, with a free `AWS_LWA_PORT` (the user's variables win, but for the wrapper,
    which mcp-deploy sets as the cloud program does)."""
    from targets.aws_lambda import LambdaOptions

    options = launch.options
    assert isinstance(options, LambdaOptions)
    variables, handler = dict(launch.variables), NODE_HANDLER
    layers: tuple[Path, ...] = ()
    if web_adapter:
        from targets.aws_lambda.web_adapter import web_adapter_layer

        layers = (web_adapter_layer(progress or _to_stderr),)
        variables = {"AWS_LWA_PORT": str(_free_port()), **variables}
        variables["AWS_LAMBDA_EXEC_WRAPPER"] = EXEC_WRAPPER
        handler = LAUNCHER
    return LambdaFunction(
        name=f"{launch.server}-{launch.environment}",
        zip_path=launch.artifact.path,
        python=launch.python,
        memory=options.memory,
        timeout=options.timeout,
        ephemeral_storage=options.ephemeral_storage,
        region=options.region or "us-east-1",
        variables=variables,
        handler=handler,
        runtime=f"nodejs{major}.x",
        layers=layers,
    )


def _to_stderr(message: str) -> None:
    print(f"lambda: {message}", file=sys.stderr, flush=True)


def function_url_host(function: LambdaFunction) -> str:
    """The Host the front door presents to the server: the Function URL's domain."""
    return f"{URL_ID}.lambda-url.{function.region}.on.aws"


def _paths(function: LambdaFunction) -> tuple[Path | None, NodeRuntime | None, Path]:
    """(the managed Python runtime's interpreter; the managed Node runtime, set up first when
    missing; the cache of unpacked task roots). None where the function has no such runtime."""
    from orchestrator.paths import cache_root
    from targets.aws_lambda.local_runtime import runtime_python
    from targets.aws_lambda.node_runtime import node_runtime

    python = runtime_python(function.python) if function.managed_python else None
    node = node_runtime(function.node_major, _to_stderr) if function.managed_node else None
    return python, node, cache_root() / "lambda-local" / "tasks"


def start_background(launch: LocalLaunch) -> LocalHandle:
    """Start the supervisor; return once its front door is open. A port this function chose
    (`launch.port` 0) that another process takes before the supervisor binds it is given up
    for another free one (at most `PORT_ATTEMPTS` times): the machine may be busy."""
    function = function_of(launch)  # builds what it needs first: not part of the timed start
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return _start_supervisor(launch, function, launch.port or _free_port())
        except OperationError as error:
            taken = "address already in use" in error.message
            if launch.port or not taken or attempt == PORT_ATTEMPTS:
                raise
    raise AssertionError("unreachable: the last attempt raises")


def with_public_url(function: LambdaFunction, port: int) -> LambdaFunction:
    """`function` with MCP_DEPLOY_PUBLIC_URL, the front door's loopback URL (see the module
    docstring), unless the user configured it."""
    variables = {PUBLIC_URL_VARIABLE: f"http://127.0.0.1:{port}", **function.variables}
    return dataclasses.replace(function, variables=variables)


def _start_supervisor(launch: LocalLaunch, function: LambdaFunction, port: int) -> LocalHandle:
    function = with_public_url(function, port)
    python, _, tasks = _paths(function)  # the supervisor finds the Node runtime in the cache
    log = launch.state_dir / "lambda.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)  # one log per deployment, like a fresh log stream, owner-only
    os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    request = {
        "function": function.to_dict(),
        "secrets": dict(launch.secrets),
        "port": port,
        "runtime_python": str(python) if python is not None else None,
        "task_cache": str(tasks),
    }
    env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
    with log.open("ab") as sink:
        supervisor = subprocess.Popen(
            # The log path and port in argv (no secret) let `find` recognise it without state.
            [sys.executable, "-m", "targets.aws_lambda.supervisor", str(log), str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sink,
            start_new_session=True,
            env=env,
        )
    assert supervisor.stdin is not None and supervisor.stdout is not None
    supervisor.stdin.write(json.dumps(request).encode())
    supervisor.stdin.close()
    answer = _read_answer(supervisor.stdout, START_TIMEOUT)
    supervisor.stdout.close()
    started = processes.start_time(supervisor.pid)
    if "url" not in answer or started is None:
        if started is not None:
            processes.stop_group(supervisor.pid, started, STOP_GRACE)
        raise OperationError(
            "the local Lambda emulation did not start: " + str(answer.get("error", "no answer")),
            detail=processes.tail(log),
        )
    return LocalHandle(
        url=answer["url"] + launch.mcp_path,
        data={
            "pid": supervisor.pid,
            "started": started,
            "log": str(log),
            "host": function_url_host(function),
        },
    )


def _read_answer(stream: IO[bytes], timeout: float) -> dict[str, Any]:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            return {"error": f"no answer within {timeout:.0f} s"}
    line = stream.readline()
    try:
        answer: dict[str, Any] = json.loads(line)
    except ValueError:
        return {"error": "the supervisor exited"}
    return answer


def run_foreground(launch: LocalLaunch, ready: Callable[[str], None]) -> None:
    """Serve until KeyboardInterrupt; the function's log goes to stderr."""
    port = launch.port or _free_port()
    function = with_public_url(function_of(launch), port)
    python, node, tasks = _paths(function)
    emulator = LambdaEmulator(
        function,
        launch.secrets,
        runtime_python=python,
        runtime_node=node,
        task_cache=tasks,
        log=sys.stderr.buffer,
        port=port,
    )
    emulator.start()
    try:
        ready(emulator.url + launch.mcp_path)
        threading.Event().wait()
    finally:
        emulator.stop()


def alive(handle: LocalHandle) -> bool:
    return processes.alive(int(handle.data["pid"]), str(handle.data["started"]))


def stop(handle: LocalHandle) -> None:
    if not processes.stop_group(int(handle.data["pid"]), str(handle.data["started"]), STOP_GRACE):
        raise OperationError(f"could not stop the local Lambda (pid {handle.data['pid']})")


def log_tail(handle: LocalHandle, lines: int = 40) -> str:
    return processes.tail(Path(str(handle.data["log"])), lines)


def follow_log(handle: LocalHandle) -> Iterator[str]:
    return processes.follow(Path(str(handle.data["log"])), lambda: alive(handle))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find(state_dir: Path, mcp_path: str) -> list[LocalHandle]:
    """Supervisors started for `state_dir` (their arguments: its log path, then the port)."""
    log = state_dir / "lambda.log"
    found = []
    for pid in processes.find_by_argv("targets.aws_lambda.supervisor", str(log)):
        started = processes.start_time(pid)
        try:
            leads = os.getpgid(pid) == pid  # supervisors lead their own process group
        except ProcessLookupError:
            continue
        if started is None or not leads:
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        after = argv.index(str(log).encode()) + 1
        port = argv[after].decode() if after < len(argv) else ""
        url = f"http://127.0.0.1:{port}{mcp_path}" if port.isdigit() else ""
        found.append(LocalHandle(url=url, data={"pid": pid, "started": started, "log": str(log)}))
    return found
