"""One Lambda function on this machine, run the way Lambda runs it.

- The zip is unpacked once per digest into the cache and mounted **read-only** as the task root
  in a private mount namespace, with a fresh **tmpfs on /tmp** sized like the function's
  ephemeral storage (both need `unshare`, i.e. root or user namespaces).
- Managed runtimes run AWS's runtime client: `awslambdaric` under the spec's Python minor,
  `aws-lambda-ric` under node of the runtime's major (`node_runtime.py`), through
  `AWS_LAMBDA_EXEC_WRAPPER` when set. An OS-only runtime (`provided.al2023`): the zip's
  `bootstrap` (else the layers' `/opt/bootstrap`) is the runtime.
- Layers are merged, in order, and mounted read-only **at /opt** in the environment's private
  namespaces; every executable of `/opt/extensions` runs as an external extension speaking the
  Extensions API (`extensions_api.py`), served with the Runtime API. So AWS's Lambda Web
  Adapter runs here: an extension that is also the runtime client. `init_phase.py` is the init,
  `execution_environment.py` starts and ends the processes.
- An HTTP front door (`function_url.py`) turns each request into a Function URL event
  (payload 2.0) and the handler's response back into HTTP. The `Host` the server sees is the
  Function URL's domain, as in the cloud (so a server that would answer 421 there answers 421
  here too).
- The Runtime and Extensions API and the Secrets Manager stand-in answer only the processes
  of the execution environment (`peers.py`): any other local process is refused 403.
- The environment starts on the first request (cold start; init, extensions included,
  limited to 10 s), then serves warm invocations one at a time; each sends INVOKE to the
  extensions subscribed to it, and the next waits until they asked for their next event.
- An invocation that outlives the function's timeout is answered 502 and its environment
  ended (SHUTDOWN to its extensions); so is one whose runtime or extension exits. The next
  request starts a new environment.
- Secrets reach the server through its cold-start read of Secrets Manager, answered by a
  loopback stand-in that holds the values in memory only.
- The log reads like CloudWatch: INIT_START, the runtime's and extensions' output, EXTENSION,
  START, END and REPORT lines with durations and the maximum memory used.

Not emulated: concurrency (Lambda would start more environments; here requests queue for the
one), the memory limit (reported, not enforced), the `/var/task` path (the task root keeps its
cache path; `LAMBDA_TASK_ROOT` says where), the Telemetry and Logs APIs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from targets.aws_lambda import http1, log_lines
from targets.aws_lambda.events import URL_ID
from targets.aws_lambda.execution_environment import ExecutionEnvironment, Process
from targets.aws_lambda.extensions_api import ExtensionsAPI
from targets.aws_lambda.function_url import FunctionURL
from targets.aws_lambda.init_phase import InitPhase, failure_outcome
from targets.aws_lambda.local_runtime import managed_launch
from targets.aws_lambda.peers import RuntimePeer
from targets.aws_lambda.runtime_api import Outcome, RuntimeAPI, new_trace_id
from targets.aws_lambda.sandbox import LambdaFunction, ManagedRuntime, lay_out_opt, unpack_task_root
from targets.aws_lambda.secrets_local import Credentials, SecretsManagerStub, secret_arn

if TYPE_CHECKING:
    from targets.aws_lambda.node_runtime import NodeRuntime

__all__ = ["INIT_LIMIT", "LambdaEmulator", "LambdaFunction", "unpack_task_root"]
SECRET_ARNS_VARIABLE = "MCP_DEPLOY_SECRET_ARNS"
INIT_LIMIT = 10.0  # seconds Lambda allows the init phase of an on-demand environment


async def _close(server: asyncio.Server) -> None:
    server.close()


class LambdaEmulator:
    """Front door + Runtime/Extensions API + the execution environment of one function;
    start()/stop().

    Both servers run on the Runtime API's event loop (one thread); processes are started,
    watched and ended from threads, so a slow process never blocks the loop. Environments
    are ended one at a time on a reaper thread; a cold start waits for the previous end.
    """

    def __init__(
        self,
        function: LambdaFunction,
        secrets: Mapping[str, str],
        *,
        runtime_python: Path | None = None,
        runtime_node: NodeRuntime | None = None,
        task_cache: Path,
        log: IO[bytes],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.function = function
        self._python, self._node = runtime_python, runtime_node
        self._runtime: ManagedRuntime | None = None  # set by start() for a managed runtime
        self._task_cache = task_cache
        self._log_sink = log
        self._log_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._environment: ExecutionEnvironment | None = None
        self._ending: concurrent.futures.Future[None] | None = None
        self._door = FunctionURL(self.invoke, f"{URL_ID}.lambda-url.{function.region}.on.aws")
        # Only the environment's processes may use the loopback endpoints.
        self._peer = RuntimePeer()
        self._extensions = None
        if not function.single_process:
            self._extensions = ExtensionsAPI(function.name, function.handler)
        self._api = RuntimeAPI(
            function.name,
            region=function.region,
            timeout=function.timeout,
            peer=self._peer,
            extensions=self._extensions,
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
        self._tasks: set[asyncio.Task[None]] = set()
        # PR_SET_PDEATHSIG fires when the *thread* that started the child ends, so processes
        # are started by one thread that lives as long as the emulator.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda-spawn")
        self._reaper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda-reap")
        self._task_root: Path | None = None
        self._opt: Path | None = None  # what the function sees as /opt
        self._merged: Path | None = None  # a merge of several layers, ours to remove

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def runtime_api(self) -> str:
        """`AWS_LAMBDA_RUNTIME_API` of the environments (host:port, the Extensions API too)."""
        return self._api.address

    def environment_pids(self) -> list[int]:
        """Host pids of the live processes of the current execution environment."""
        environment = self._environment
        return environment.members() if environment is not None else []

    def start(self) -> LambdaEmulator:
        """Unpack the zip, find the managed runtime (`local_runtime.managed_launch`), lay out
        /opt and open the front door. The runtime starts on the first request."""
        self._task_root = unpack_task_root(self.function.zip_path, self._task_cache)
        self._runtime = managed_launch(
            self.function, self._task_root, python=self._python, node=self._node, progress=self._log
        )
        if not self.function.single_process:
            self._opt, self._merged = lay_out_opt(self.function.layers, self._task_cache)
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
        """Close the front door and end the execution environment (SHUTDOWN "spindown")."""
        if self._server is not None:
            server, self._server = self._server, None
            self._api.call(_close(server))
        self._schedule_end("spindown").result()
        self._reaper.shutdown()
        self._spawner.shutdown()
        self._api.stop()
        if self._secrets is not None:
            self._secrets.stop()
        if self._merged is not None:
            shutil.rmtree(self._merged, ignore_errors=True)

    # -- invocations -------------------------------------------------------------------------

    async def invoke(self, event: dict[str, Any]) -> Outcome:
        """Run one invocation, starting the execution environment first when there is none."""
        lock = self._invoke_lock
        assert lock is not None
        await lock.acquire()
        handed_off = False
        try:
            init_ms = None
            if not self._running():
                init_ms, failed = await self._cold_start()
                if failed is not None:
                    return failed
            request_id, trace_id = str(uuid.uuid4()), new_trace_id()
            self._log(log_lines.start_line(request_id))
            started = time.perf_counter()
            timeout = self.function.timeout
            deadline_ms = int((time.time() + timeout) * 1000)
            if self._extensions is not None:
                arn = self._api.function_arn
                self._extensions.deliver_invoke(request_id, deadline_ms, arn, trace_id)
            outcome = await self._api.invoke_async(
                event, timeout, request_id, deadline_ms=deadline_ms, trace_id=trace_id
            )
            if outcome.kind == "timeout":
                self._log_timeout(request_id)
                await asyncio.wrap_future(self._schedule_end("timeout"))
            elif outcome.kind == "exited":
                self._log(log_lines.error_line(request_id, outcome))
            if self._extensions is not None and outcome.kind in ("response", "error"):
                # The caller has its answer; the next invocation waits for the extensions.
                finish = self._after_extensions(lock, request_id, started, init_ms)
                task = asyncio.get_running_loop().create_task(finish)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                handed_off = True
            else:
                duration = (time.perf_counter() - started) * 1000
                # END and REPORT (which reads the peak memory) are written once the caller's
                # response has gone out: the log is not on the request's path.
                loop = asyncio.get_running_loop()
                loop.call_soon(self._log_end, request_id, duration, init_ms)
            return outcome
        finally:
            if not handed_off:
                lock.release()

    async def _after_extensions(
        self, lock: asyncio.Lock, request_id: str, started: float, init_ms: float | None
    ) -> None:
        """Hold the next invocation until every extension subscribed to INVOKE has asked for
        its next event (within the function's timeout, else the environment is ended)."""
        try:
            extensions = self._extensions
            assert extensions is not None
            deadline = started + self.function.timeout
            while self._running() and not extensions.all_ready("INVOKE"):
                if time.perf_counter() > deadline:
                    self._log_timeout(request_id)
                    await asyncio.wrap_future(self._schedule_end("timeout"))
                    break
                await asyncio.sleep(0.002)
            self._log_end(request_id, (time.perf_counter() - started) * 1000, init_ms)
        finally:
            lock.release()

    def _log_timeout(self, request_id: str) -> None:
        self._log(log_lines.timeout_line(request_id, self.function.timeout))

    def _log_end(self, request_id: str, duration: float, init_ms: float | None) -> None:
        environment = self._environment
        used = environment.max_memory_mb() if environment is not None else None
        memory = self.function.memory
        self._log(log_lines.end_lines(request_id, duration, memory, used, init_ms))

    async def _cold_start(self) -> tuple[float, Outcome | None]:
        """Start an execution environment and wait for its init; (init ms, the failure when
        init failed)."""
        if self._ending is not None:
            await asyncio.wrap_future(self._ending)  # the previous environment is gone first
        started = time.perf_counter()
        deadline = started + INIT_LIMIT
        environment = ExecutionEnvironment(
            self.function,
            self._task_root or Path(),
            self._opt,
            runtime_root=self._runtime.root if self._runtime is not None else None,
            log=self._log_sink,
            spawner=self._spawner,
            on_exit=self._exited,
        )
        with self._state_lock:
            self._api.reset()
            self._environment = environment
            self._peer.pid, self._peer.members = 0, environment.members
        phase = InitPhase(
            self.function,
            environment.task_root,
            self._opt,
            self._runtime,
            self._api,
            self._extensions,
            self.environment_variables(),
            self._log,
            INIT_LIMIT,
        )
        failure = await phase.run(environment, deadline)
        init_ms = (time.perf_counter() - started) * 1000
        if self._extensions is not None:
            for line in self._extensions.log_lines():
                self._log(line)
        if failure is None:
            with self._state_lock:
                environment.initialized = True  # from now on, `_exited` reports an exit
                failure = phase.failure(environment)  # or one came just before
            if failure is None:
                return init_ms, None
        kind = log_lines.error_type(failure)
        if kind == "Runtime.InitTimeout":
            init_ms = INIT_LIMIT * 1000
        self._log(log_lines.init_report_line(init_ms, kind))
        reason = "timeout" if kind == "Runtime.InitTimeout" else "failure"
        await asyncio.wrap_future(self._schedule_end(reason))
        return init_ms, failure

    # -- the execution environment -----------------------------------------------------------

    def _running(self) -> bool:
        environment = self._environment
        return (
            environment is not None
            and environment.initialized
            and not environment.ending
            and environment.runtime_running()
        )

    def environment_variables(self) -> dict[str, str]:
        """What the runtime gets on top of Lambda's own variables: credentials, the secret
        ARNs and the local Secrets Manager endpoint, then the function's variables."""
        env = self._credentials.environment()
        if self._secrets is not None:
            env[SECRET_ARNS_VARIABLE] = json.dumps(self._secret_arns, sort_keys=True)
            env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = self._secrets.endpoint
        env.update(self.function.variables)
        return env

    def _exited(self, process: Process, code: int) -> None:
        """A program of the environment ended on its own (watcher thread). During init the
        cold start reports it; afterwards it fails what the environment was running and ends
        the environment (SHUTDOWN "failure" to the other extensions)."""
        with self._state_lock:
            environment = self._environment
            if environment is None or not environment.initialized:
                return
        self._schedule_end("failure", failure_outcome(process, code), only=environment)

    def _schedule_end(
        self,
        reason: str,
        outcome: Outcome | None = None,
        only: ExecutionEnvironment | None = None,
    ) -> concurrent.futures.Future[None]:
        """End the current environment on the reaper thread (the ends happen one at a time);
        `outcome` is what a running invocation gets at once. With `only`, nothing happens
        unless that is the current environment (and not ending already)."""
        with self._state_lock:
            if only is not None and (self._environment is not only or only.ending):
                done: concurrent.futures.Future[None] = concurrent.futures.Future()
                done.set_result(None)
                return done
            environment, self._environment = self._environment, None
            if environment is not None:
                environment.ending = True
            future = self._reaper.submit(self._end, environment, reason, outcome)
            self._ending = future
        return future

    def _end(
        self, environment: ExecutionEnvironment | None, reason: str, outcome: Outcome | None
    ) -> None:
        serving = self._api.loop.is_running()
        if outcome is not None:
            self._api.reset(outcome)  # fail what it was running at once
        if environment is not None:
            deliver = None
            if self._extensions is not None and serving and self._api.call(self._registered()):
                deliver = self._shutdown_events(reason)
            environment.end(reason, deliver)
        with self._state_lock:
            self._peer.pid, self._peer.members = 0, None
        self._api.reset()
        if self._extensions is not None and serving:
            self._api.call(self._forget_extensions())

    async def _registered(self) -> bool:
        return bool(self._extensions is not None and self._extensions.registered)

    async def _forget_extensions(self) -> None:
        if self._extensions is not None:
            self._extensions.end()

    def _shutdown_events(self, reason: str) -> Callable[[int], Collection[str]]:
        async def deliver(deadline_ms: int) -> list[str]:
            assert self._extensions is not None
            return self._extensions.deliver_shutdown(reason, deadline_ms)

        return lambda deadline_ms: self._api.call(deliver(deadline_ms))

    # -- log ---------------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        with self._log_lock:
            self._log_sink.write(line.encode() + b"\n")
            self._log_sink.flush()
