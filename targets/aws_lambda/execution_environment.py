"""The processes of one local Lambda execution environment: started, watched, ended.

Two shapes (`sandbox.py` builds their command lines):

- single process (a managed runtime without layers or exec wrapper): the runtime alone,
  `unshare`d into its own mount namespace, its pid the one `Popen` returned;
- several processes (an OS-only runtime, layers, an exec wrapper): a holder creates mount
  and PID namespaces (`sandbox.holder_command`); extensions and the runtime enter them with
  `nsenter`, which forks once, so each program is the child of the process `Popen` returned
  (`Process.pid` is the program's own pid, found through /proc). Everything the programs
  start stays in the PID namespace, so `members()` (for the peer check) and the end are
  complete: ending the holder has the kernel kill every process of the namespace.

`end()` follows Lambda's shutdown (as its runtime interface emulator does it): with no
extension registered the runtime is killed at once; otherwise the runtime gets SIGTERM and
`RUNTIME_SHARE` of `SHUTDOWN_GRACE` to exit (then SIGKILL), extensions subscribed to SHUTDOWN
get the event (the caller's `deliver_shutdown`) and the rest of the grace to exit, other
extensions are killed at once; finally the holder, and with it anything left, is ended. The
single-process shape keeps its own rule: SIGTERM then 2 s before SIGKILL on a stop, SIGKILL
otherwise.

Every process is started by the emulator's one spawner thread with `die_with_parent`: if the
emulator dies, the kernel ends its environments too. The processes of the several-process
shape have process groups of their own: a signal to the emulator's group (`stop` of a
background deployment, ^C) reaches only the emulator, which ends them as Lambda would.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from targets.aws_lambda.peers import descendants
from targets.aws_lambda.sandbox import (
    LambdaFunction,
    die_with_parent,
    enter_command,
    holder_command,
)

SHUTDOWN_GRACE = 2.0  # seconds Lambda allows the shutdown phase with external extensions
RUNTIME_SHARE = 0.3  # of it, for the runtime to exit after SIGTERM
SINGLE_GRACE = 2.0  # seconds a single-process runtime gets after SIGTERM on a stop
_HOLDER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# deliver_shutdown(deadline_ms) -> names of the extensions that got a SHUTDOWN event
DeliverShutdown = Callable[[int], Collection[str]]


@dataclass(eq=False)
class Process:
    """One program of the environment: the runtime or an extension (`name`: its file name)."""

    role: str
    name: str
    popen: subprocess.Popen[bytes] = field(repr=False)
    pid: int = 0  # the program's own pid (for nsenter-started ones, nsenter's child)

    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        """Send `signum` to the program (nothing when it has ended)."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid or self.popen.pid, signum)


class ExecutionEnvironment:
    """The processes of one execution environment; `on_exit(process, code)` is called (on a
    watcher thread) when a program ends before `end()` began."""

    def __init__(
        self,
        function: LambdaFunction,
        task_root: Path,
        opt: Path | None,
        *,
        runtime_root: Path | None = None,
        log: IO[bytes],
        spawner: ThreadPoolExecutor,
        on_exit: Callable[[Process, int], None],
    ) -> None:
        self.function = function
        self.task_root = task_root
        self.opt = opt
        self.runtime_root = runtime_root  # where a managed runtime lives on this machine
        self.single = opt is None
        self.processes: list[Process] = []
        self.ending = False
        self.initialized = False
        self.exits: list[tuple[Process, int]] = []  # programs that ended before end()
        self._log = log
        self._spawner = spawner
        self._on_exit = on_exit
        self._holder: subprocess.Popen[bytes] | None = None
        self._started: list[subprocess.Popen[bytes]] = []  # every Popen, as soon as it exists
        self._init = 0  # host pid of PID 1 of the environment's PID namespace
        self._lock = threading.Lock()

    # -- starting ---------------------------------------------------------------------------

    def open(self, timeout: float) -> None:
        """Create the namespaces (several-process shape; nothing for a single process).
        Raises OSError when the holder does not come up within `timeout` seconds."""
        if self.single:
            return
        assert self.opt is not None
        command = holder_command(self.function, self.task_root, self.opt, self.runtime_root)
        holder = self._spawner.submit(self._popen_holder, command).result()
        self._holder = holder
        assert holder.stdout is not None
        ready, _, _ = select.select([holder.stdout], [], [], timeout)
        line = holder.stdout.readline() if ready else b""
        holder.stdout.close()
        if line.strip() != b"ready":
            self._stop_holder()
            raise OSError("could not create the execution environment's namespaces (see the log)")
        self._init = _first_child(holder.pid, timeout)
        if not self._init:
            self._stop_holder()
            raise OSError("the execution environment's namespaces vanished")

    def _popen_holder(self, command: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command,
            env={"PATH": _HOLDER_PATH, "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            preexec_fn=die_with_parent,
            process_group=0,
        )

    def start(
        self, role: str, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path | str
    ) -> Process:
        """Start `argv` as the environment's `role` ("runtime" or "extension") and watch it.
        In the single-process shape `argv` is the whole command (`sandbox.runtime_command`)."""
        command = list(argv) if self.single else enter_command(self._init, argv, cwd)
        popen = self._spawner.submit(self._popen, command, env, cwd).result()
        process = Process(role, name, popen, popen.pid)
        if not self.single:
            process.pid = _first_child(popen.pid, 1.0) or popen.pid
        with self._lock:
            self.processes.append(process)
        threading.Thread(target=self._watch, args=(process,), daemon=True).start()
        return process

    def _popen(
        self, command: list[str], env: dict[str, str], cwd: Path | str
    ) -> subprocess.Popen[bytes]:
        """On the spawner thread (PR_SET_PDEATHSIG follows the thread that forks). The new
        process counts as a member at once: its program may connect before `start` returns."""
        popen = subprocess.Popen(
            command,
            cwd=cwd if self.single else None,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            preexec_fn=die_with_parent,
            # Several processes: out of the emulator's process group, so a signal to that
            # group (a stop, ^C) reaches the emulator, which ends them the way Lambda does.
            process_group=None if self.single else 0,
        )
        with self._lock:
            self._started.append(popen)
        return popen

    def _watch(self, process: Process) -> None:
        code = process.popen.wait()
        with self._lock:
            if self.ending:
                return
            self.exits.append((process, code))
        self._on_exit(process, code)

    # -- looking at it ----------------------------------------------------------------------

    @property
    def runtime(self) -> Process | None:
        return next((p for p in self.processes if p.role == "runtime"), None)

    def runtime_running(self) -> bool:
        runtime = self.runtime
        return runtime is not None and runtime.running()

    def members(self) -> list[int]:
        """Host pids of every live process of the environment (the programs, what they
        started, and the helpers that started them); of a single-process one, its runtime."""
        with self._lock:
            roots = [popen.pid for popen in self._started if popen.poll() is None]
        if self.single:
            return roots
        if self._holder is not None and self._holder.poll() is None:
            roots.append(self._holder.pid)
        return descendants(roots)

    def max_memory_mb(self) -> int | None:
        """The sum of the programs' peak resident sizes (VmHWM), in MB; None when unknown."""
        helpers = {p.popen.pid for p in self.processes if p.pid != p.popen.pid}
        if self._holder is not None:
            helpers |= {self._holder.pid, self._init}
        total, known = 0, False
        for pid in self.members():
            if pid in helpers:
                continue
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    total, known = total + int(line.split()[1]), True
        return total // 1024 if known else None

    # -- ending -----------------------------------------------------------------------------

    def end(self, reason: str, deliver_shutdown: DeliverShutdown | None) -> None:
        """End every process (see the module's docstring); returns once they are gone.
        `reason` is Lambda's shutdown reason (spindown, timeout, failure)."""
        with self._lock:
            self.ending = True
            processes = list(self.processes)
        if self.single:
            self._end_single(processes, signal.SIGTERM if reason == "spindown" else signal.SIGKILL)
            return
        start = time.monotonic()
        runtime = [p for p in processes if p.role == "runtime"]
        extensions = [p for p in processes if p.role == "extension"]
        if deliver_shutdown is None:
            for process in runtime:
                process.signal(signal.SIGKILL)
        else:
            for process in runtime:
                process.signal(signal.SIGTERM)
            _wait(runtime, start + SHUTDOWN_GRACE * RUNTIME_SHARE)
            for process in runtime:
                process.signal(signal.SIGKILL)
            deadline_ms = int((time.time() + SHUTDOWN_GRACE - (time.monotonic() - start)) * 1000)
            told = set(deliver_shutdown(deadline_ms))
            for process in extensions:
                if process.name not in told:
                    process.signal(signal.SIGKILL)
            _wait(extensions, start + SHUTDOWN_GRACE)
        self._stop_holder()
        for process in processes:
            process.signal(signal.SIGKILL)
            _reap(process.popen, 5.0)

    def _end_single(self, processes: list[Process], first: signal.Signals) -> None:
        for process in processes:
            if not process.running():
                continue
            process.popen.send_signal(first)
            try:
                process.popen.wait(SINGLE_GRACE)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()

    def _stop_holder(self) -> None:
        """End the holder: its child, PID 1 of the namespace, dies with it (--kill-child), and
        the kernel kills every other process of the namespace."""
        holder = self._holder
        if holder is None:
            return
        with contextlib.suppress(ProcessLookupError):
            holder.kill()
        _reap(holder, 5.0)
        deadline = time.monotonic() + 5.0
        while self._init and _exists(self._init) and time.monotonic() < deadline:
            time.sleep(0.005)


def _wait(processes: list[Process], deadline: float) -> None:
    while any(p.running() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.005)


def _reap(popen: subprocess.Popen[bytes], seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(seconds)


def _exists(pid: int) -> bool:
    """True while `pid` is a live process (not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _first_child(pid: int, timeout: float) -> int:
    """The first child of process `pid` (0 when it has none within `timeout` seconds, or
    ends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return 0
        if children:
            return int(children[0])
        time.sleep(0.0005)
    return 0
