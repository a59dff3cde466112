"""One Lambda function on this machine, run the way Lambda runs it.

- The zip is unpacked once per digest into the cache and mounted **read-only** as the task root
  in a private mount namespace, with a fresh **tmpfs on /tmp** sized like the function's
  ephemeral storage (both need `unshare`, i.e. root or user namespaces).
- AWS's runtime client (`awslambdaric`) runs the handler under a Python of the spec's minor
  version, with the environment variables Lambda sets, against a Runtime API on loopback.
- An HTTP front door (`function_url.py`) turns each request into a Function URL event
  (payload 2.0) and the handler's response back into HTTP. The `Host` the server sees is the
  Function URL's domain, as in the cloud (so a server that would answer 421 there answers 421
  here too).
- The Runtime API and the Secrets Manager stand-in answer only the runtime process this
  emulator started (`peers.py`): any other local process is refused 403.
- The execution environment starts on the first request (cold start, init limited to 10 s),
  then serves warm invocations one at a time. An invocation that outlives the function's
  timeout is answered 502 and its environment is killed; the next request starts a new one.
- Secrets reach the server through the shim's cold-start read of Secrets Manager, answered by a
  loopback stand-in that holds the values in memory only.
- The log reads like CloudWatch: INIT_START, START, the runtime's output, END and REPORT lines
  with durations and the maximum memory used.

Not emulated: concurrency (Lambda would start more environments; here requests queue for the
one), the memory limit (reported, not enforced), the `/var/task` path (the task root keeps its
cache path; `LAMBDA_TASK_ROOT` says where).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from targets.aws_lambda import http1
from targets.aws_lambda.events import URL_ID
from targets.aws_lambda.function_url import FunctionURL
from targets.aws_lambda.peers import RuntimePeer
from targets.aws_lambda.runtime_api import Outcome, RuntimeAPI
from targets.aws_lambda.sandbox import (
    LambdaFunction,
    die_with_parent,
    runtime_command,
    runtime_environment,
    unpack_task_root,
)
from targets.aws_lambda.secrets_local import Credentials, SecretsManagerStub, secret_arn

__all__ = ["INIT_LIMIT", "LambdaEmulator", "LambdaFunction", "unpack_task_root"]
SECRET_ARNS_VARIABLE = "MCP_DEPLOY_SECRET_ARNS"
INIT_LIMIT = 10.0  # seconds Lambda allows the init phase of an on-demand environment


async def _close(server: asyncio.Server) -> None:
    server.close()


def _wait_quietly(process: subprocess.Popen[bytes], seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(seconds)  # a runtime that lingers is ended by the caller


class LambdaEmulator:
    """Front door + Runtime API + runtime process for one function; start()/stop().

    Both servers run on the Runtime API's event loop (one thread); the runtime process is
    started, watched and ended from threads, so a slow process never blocks the loop.
    """

    def __init__(
        self,
        function: LambdaFunction,
        secrets: Mapping[str, str],
        *,
        runtime_python: Path,
        task_cache: Path,
        log: IO[bytes],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.function = function
        self._python = runtime_python
        self._task_cache = task_cache
        self._log_sink = log
        self._log_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._door = FunctionURL(self.invoke, f"{URL_ID}.lambda-url.{function.region}.on.aws")
        # Only the runtime process may use the Runtime API and the Secrets Manager stand-in.
        self._peer = RuntimePeer()
        self._api = RuntimeAPI(
            function.name, region=function.region, timeout=function.timeout, peer=self._peer
        )
        self._credentials = Credentials.generate()
        arns = {name: secret_arn(function.region, function.name, name) for name in secrets}
        self._secret_arns = arns
        self._secrets: SecretsManagerStub | None = None
        if secrets:
            values = {arns[name]: value for name, value in secrets.items()}
            self._secrets = SecretsManagerStub(values, self._credentials, self._peer)
        self._host, self._port = host, port
        self._server: asyncio.Server | None = None
        self._invoke_lock: asyncio.Lock | None = None
        # PR_SET_PDEATHSIG fires when the *thread* that started the child ends, so runtimes
        # are started by one thread that lives as long as the emulator.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda-spawn")
        self._task_root: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def start(self) -> LambdaEmulator:
        """Unpack the zip and open the front door. The runtime starts on the first request."""
        self._task_root = unpack_task_root(self.function.zip_path, self._task_cache)
        if self._secrets is not None:
            self._secrets.start()
        self._api.start()
        self._server = self._api.call(self._open())
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _open(self) -> asyncio.Server:
        self._invoke_lock = asyncio.Lock()
        return await asyncio.start_server(
            self._door.connection, self._host, self._port, limit=http1.MAX_HEAD
        )

    def stop(self) -> None:
        """Close the front door and end the execution environment."""
        if self._server is not None:
            server, self._server = self._server, None
            self._api.call(_close(server))
        self._end_runtime(signal.SIGTERM)
        self._spawner.shutdown()
        self._api.stop()
        if self._secrets is not None:
            self._secrets.stop()

    # -- invocations -------------------------------------------------------------------------

    async def invoke(self, event: dict[str, Any]) -> Outcome:
        """Run one invocation, starting the execution environment first when there is none."""
        assert self._invoke_lock is not None
        async with self._invoke_lock:
            init_ms = None
            if not self._runtime_running():
                init_ms, failed = await self._cold_start()
                if failed is not None:
                    return failed
            request_id = str(uuid.uuid4())
            self._log(f"START RequestId: {request_id} Version: $LATEST")
            started = time.perf_counter()
            outcome = await self._api.invoke_async(event, self.function.timeout, request_id)
            duration = (time.perf_counter() - started) * 1000
            if outcome.kind == "timeout":
                self._log(
                    f"{_timestamp()} {request_id} Task timed out after "
                    f"{self.function.timeout:.2f} seconds"
                )
                await self._in_thread(self._end_runtime, signal.SIGKILL)
            elif outcome.kind == "exited":
                self._log(f"RequestId: {request_id} Error: {_message(outcome)}")
            # END and REPORT (which reads the runtime's peak memory) are written once the
            # caller's response has gone out: the log is not on the request's path.
            asyncio.get_running_loop().call_soon(self._log_end, request_id, duration, init_ms)
            return outcome

    def _log_end(self, request_id: str, duration: float, init_ms: float | None) -> None:
        self._log(f"END RequestId: {request_id}\n" + self._report(request_id, duration, init_ms))

    async def _in_thread(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    async def _cold_start(self) -> tuple[float, Outcome | None]:
        """Start the runtime and wait for its init; (init ms, the failure when init failed)."""
        started = time.perf_counter()
        process = await self._in_thread(self._spawn)
        polled = self._api.polled
        deadline = started + INIT_LIMIT
        while not polled.is_set():
            if self._api.init_error is not None or process.poll() is not None:
                break
            if time.perf_counter() > deadline:
                await self._in_thread(self._end_runtime, signal.SIGKILL)
                self._log(f"INIT_REPORT Init Duration: {INIT_LIMIT * 1000:.2f} ms Status: timeout")
                return INIT_LIMIT * 1000, Outcome(
                    "init_error",
                    json.dumps(
                        {
                            "errorType": "Runtime.InitTimeout",
                            "errorMessage": f"init did not finish in {INIT_LIMIT:.0f} s",
                        }
                    ).encode(),
                )
            await asyncio.sleep(0.002)
        init_ms = (time.perf_counter() - started) * 1000
        if polled.is_set():
            return init_ms, None
        await self._in_thread(_wait_quietly, process, 5.0)
        failure = self._api.init_error or Outcome(
            "init_error",
            json.dumps(
                {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"Runtime exited with error: exit status {process.returncode}",
                }
            ).encode(),
        )
        self._log(f"INIT_REPORT Init Duration: {init_ms:.2f} ms Status: error")
        await self._in_thread(self._end_runtime, signal.SIGKILL)
        return init_ms, failure

    def _report(self, request_id: str, duration: float, init_ms: float | None) -> str:
        used = self._max_memory_mb()
        line = (
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: "
            f"{max(1, int(duration + 0.999))} ms\tMemory Size: {self.function.memory} MB\t"
            f"Max Memory Used: {used if used is not None else '?'} MB"
        )
        if init_ms is not None:
            line += f"\tInit Duration: {init_ms:.2f} ms"
        if used is not None and used > self.function.memory:
            line += "\tWARNING: above the memory size (Lambda would end it: Runtime.OutOfMemory)"
        return line

    def _max_memory_mb(self) -> int | None:
        process = self._process
        if process is None:
            return None
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
        return None

    # -- the runtime process -----------------------------------------------------------------

    def _runtime_running(self) -> bool:
        process = self._process
        return process is not None and process.poll() is None

    def _environment(self) -> dict[str, str]:
        assert self._task_root is not None
        env = runtime_environment(self.function, self._task_root, self._python, self._api.address)
        env.update(self._credentials.environment())
        env.update(self.function.variables)
        if self._secrets is not None:
            env[SECRET_ARNS_VARIABLE] = json.dumps(self._secret_arns, sort_keys=True)
            env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = self._secrets.endpoint
        return env

    def _popen(self, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """On the spawner thread: start the runtime and admit it to the loopback endpoints."""
        process = subprocess.Popen(
            command,
            cwd=self._task_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_sink,
            stderr=self._log_sink,
            preexec_fn=die_with_parent,
        )
        self._peer.pid = process.pid
        return process

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self._state_lock:
            self._api.reset()
            self._log(
                f"INIT_START Runtime Version: python:{self.function.python} (local emulation, "
                f"awslambdaric)"
            )
            assert self._task_root is not None
            command = runtime_command(self.function, self._task_root, self._python)
            process = self._spawner.submit(self._popen, command, self._environment()).result()
            self._process = process
        threading.Thread(target=self._watch, args=(process,), daemon=True).start()
        return process

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        """When a runtime process ends, fail whatever it was running (Runtime.ExitError)."""
        code = process.wait()
        with self._state_lock:
            if self._process is not process:
                return
            self._process = None
            self._peer.pid = 0
            if not self._api.polled.is_set():
                return  # died during init: the cold start reports it (keeps the init error)
            reason = f"signal {-code}" if code < 0 else f"exit status {code}"
            body = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"Runtime exited with error: {reason}",
            }
            self._api.reset(Outcome("exited", json.dumps(body).encode()))

    def _end_runtime(self, first: signal.Signals) -> None:
        with self._state_lock:
            process, self._process = self._process, None
            self._peer.pid = 0
            self._api.reset()
        if process is None or process.poll() is not None:
            return
        process.send_signal(first)
        try:
            process.wait(2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # -- log ---------------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        with self._log_lock:
            self._log_sink.write(line.encode() + b"\n")
            self._log_sink.flush()


def _message(outcome: Outcome) -> str:
    try:
        return str(outcome.json().get("errorMessage", ""))
    except (ValueError, AttributeError):
        return outcome.body.decode(errors="replace")[:500]


def _timestamp() -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        + f".{int(time.time() * 1000) % 1000:03d}Z"
    )
