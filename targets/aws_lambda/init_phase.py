"""The init phase of a local Lambda execution environment, as Lambda runs it.

1. INIT_START is logged; the namespaces are created (`ExecutionEnvironment.open`).
2. Every executable of /opt/extensions is started, in name order, as an external extension
   (with the variables extensions get); init waits until each has registered.
3. The runtime starts: AWS's runtime client for a managed runtime (Python or Node.js; through
   `AWS_LAMBDA_EXEC_WRAPPER` when the function sets it); for an OS-only one the zip's
   `bootstrap`, else /opt/bootstrap (neither: Runtime.InvalidEntrypoint).
4. Init is complete once the runtime has asked for its first invocation (registration then
   closes) and every registered extension has asked for its first event.

All of it within the init limit (else Runtime.InitTimeout). Any process that exits meanwhile
fails the init (the runtime: its init error, else Runtime.ExitError; an extension:
Extension.Crash), and so does an extension's /init/error or /exit/error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from targets.aws_lambda.execution_environment import ExecutionEnvironment, Process
from targets.aws_lambda.extensions_api import ExtensionsAPI
from targets.aws_lambda.runtime_api import Outcome, RuntimeAPI
from targets.aws_lambda.sandbox import (
    LambdaFunction,
    ManagedRuntime,
    bootstrap_argv,
    bootstrap_of,
    extension_environment,
    extension_paths,
    runtime_command,
    runtime_environment,
)

OPT = Path("/opt")  # where the environment's processes see the layers
REPORTED_EXIT_WAIT = 5.0  # seconds a runtime that reported an init error gets to exit itself


def init_failure(error_type: str, message: str) -> Outcome:
    """The outcome of an init that failed with `error_type`."""
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    return Outcome("init_error", body)


def _status(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit status {code}"


def failure_outcome(process: Process, code: int) -> Outcome:
    """What an invocation gets when `process` ended with `code` under it."""
    if process.role == "runtime":
        error = {"errorType": "Runtime.ExitError"}
        error["errorMessage"] = f"Runtime exited with error: {_status(code)}"
    else:
        error = {"errorType": "Extension.Crash"}
        error["errorMessage"] = f"Extension {process.name} exited: {_status(code)}"
    return Outcome("exited", json.dumps(error).encode())


@dataclass(frozen=True)
class InitPhase:
    """What the init phase of one function needs; `variables` are added to Lambda's own
    (credentials, the secret endpoint, the function's variables), `log` writes a log line."""

    function: LambdaFunction
    task_root: Path
    opt: Path | None
    runtime: ManagedRuntime | None  # None for an OS-only runtime
    api: RuntimeAPI
    extensions: ExtensionsAPI | None
    variables: Mapping[str, str]
    log: Callable[[str], None]
    limit: float

    async def run(self, environment: ExecutionEnvironment, deadline: float) -> Outcome | None:
        """Start `environment`'s processes and wait for its init; the failure, if it failed."""
        function, runtime = self.function, self.runtime
        if runtime is not None:
            version = runtime.version
        else:
            version = function.runtime.replace(".", ":", 1) + " (local emulation)"
        self.log(f"INIT_START Runtime Version: {version}")
        env = runtime_environment(function, self.task_root, runtime, self.api.address)
        env.update(self.variables)
        try:
            await _in_thread(environment.open, max(0.1, deadline - time.perf_counter()))
            failure = await self._extensions(environment, env, deadline)
            if failure is None:
                failure = await self._runtime(environment, env, deadline)
        except OSError as error:
            return init_failure("Sandbox.Failure", f"the local emulation failed: {error}")
        if failure is not None and self.api.init_error is failure:
            process = environment.runtime
            if process is not None:  # it reported, and exits by itself (its log comes first)
                await _in_thread(_wait_quietly, process.popen, REPORTED_EXIT_WAIT)
        return failure

    async def _extensions(
        self, environment: ExecutionEnvironment, env: dict[str, str], deadline: float
    ) -> Outcome | None:
        if self.extensions is None or self.opt is None:
            return None
        paths = extension_paths(self.opt)
        self.extensions.begin(path.name for path in paths)
        variables = extension_environment(env)
        for path in paths:
            argv = [str(OPT / "extensions" / path.name)]
            await _in_thread(environment.start, "extension", path.name, argv, variables, "/")
        return await self._until(self.extensions.all_external_registered, environment, deadline)

    async def _runtime(
        self, environment: ExecutionEnvironment, env: dict[str, str], deadline: float
    ) -> Outcome | None:
        function, runtime = self.function, self.runtime
        if runtime is not None:
            env = {**runtime.defaults, **env}  # what its bootstrap sets, unless the function did
        if environment.single:
            assert runtime is not None
            argv = runtime_command(function, self.task_root, runtime)
        elif runtime is not None:
            argv = bootstrap_argv(function, runtime)
        else:
            assert self.opt is not None
            bootstrap = bootstrap_of(self.task_root, self.opt)
            if bootstrap is None:
                return init_failure(
                    "Runtime.InvalidEntrypoint",
                    f"Couldn't find valid bootstrap(s): [{self.task_root / 'bootstrap'} "
                    f"{OPT / 'bootstrap'}]",
                )
            if bootstrap.is_relative_to(self.opt):
                bootstrap = OPT / bootstrap.relative_to(self.opt)
            argv = [str(bootstrap)]
        await _in_thread(environment.start, "runtime", "runtime", argv, env, self.task_root)
        failure = await self._until(self.api.polled.is_set, environment, deadline)
        if failure is not None or self.extensions is None:
            return failure
        self.extensions.close_registration()
        return await self._until(self.extensions.all_ready, environment, deadline)

    async def _until(
        self, done: Callable[[], bool], environment: ExecutionEnvironment, deadline: float
    ) -> Outcome | None:
        """Wait until `done()`, a failure of the environment, or the init deadline."""
        while not done():
            failure = self.failure(environment)
            if failure is not None:
                return failure
            if time.perf_counter() > deadline:
                return init_failure(
                    "Runtime.InitTimeout", f"init did not finish in {self.limit:.0f} s"
                )
            await asyncio.sleep(0.002)
        return None

    def failure(self, environment: ExecutionEnvironment) -> Outcome | None:
        """How the init failed so far (an error reported, a process ended), if it did."""
        if self.api.init_error is not None:
            return self.api.init_error
        if self.extensions is not None and self.extensions.failure is not None:
            return init_failure(*self.extensions.failure)
        if environment.exits:
            process, code = environment.exits[0]
            if process.role == "runtime":
                return self.api.init_error or init_failure(
                    "Runtime.ExitError", f"Runtime exited with error: {_status(code)}"
                )
            return init_failure(
                "Extension.Crash", f"Extension {process.name} exited: {_status(code)}"
            )
        return None


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


def _wait_quietly(process: subprocess.Popen[bytes], seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(seconds)  # a runtime that lingers is ended by the caller
