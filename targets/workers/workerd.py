"""workerd, Cloudflare's Workers runtime, from npm: installed once per machine and started with
its configuration handed over in memory.

Installing (`workerd_binary`): the npm package `workerd` at the exact version `WORKERD_VERSION`
goes into `cache_root()/workerd/<version>` with
`npm install --no-audit --no-fund --ignore-scripts --prefix <dir> workerd@<version>` (npm
verifies the tarballs' integrity; the package's postinstall script only relinks its `bin`
launcher, which is not used: the binary is run straight from its platform package,
`node_modules/@cloudflare/workerd-linux-64/bin/workerd`, or `-linux-arm64`). Concurrent
installers serialise on a lock file, and each installs into a temporary directory renamed into
place once the binary answers `--version`, so a reader never sees half an installation.
Measured: ~2 s and a 48 MB download on a cold npm cache, 160 MB installed.

Serving (`serve`): workerd reads a Cap'n Proto text config from a *file*. The config holds the
Worker's bindings, secret values included, so it never touches a disk: it is written into an
anonymous in-memory file (`memfd_create`) that becomes workerd's stdin, and workerd reads
`/dev/stdin` (a pipe is refused: "Config path is not a file"). workerd reports, on a control
pipe (`--control-fd`), the port of each socket once it listens; by then the config has been
parsed and every Worker compiled, and the in-memory file is emptied (`ftruncate` to 0), so the
values are left only in workerd's own heap, where Cloudflare's runtime holds them too. Nothing
goes into argv or the environment but paths, the config constant's name and the control fd.

`NEWEST_COMPATIBILITY_DATE` is the newest compatibility date the pinned binary accepts (it
refuses later ones: "This Worker requires compatibility date …, but the newest date supported
by this server binary is …"); it is pinned with the version (`newest_supported_date` asks the
binary, and the integration tests check that both agree).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import platform
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from orchestrator.errors import OperationError
from orchestrator.paths import cache_root

# Change both together: `newest_supported_date(binary)` tells the second from the first.
WORKERD_VERSION = "1.20261117.1"
NEWEST_COMPATIBILITY_DATE = dt.date(2026, 11, 24)
_PLATFORM_PACKAGES = {"x86_64": "workerd-linux-64", "aarch64": "workerd-linux-arm64"}
# What workerd keeps of the caller's environment (never where secret values come from).
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
_NEWEST_DATE = re.compile(r'newest date supported by this server binary is "(\d{4}-\d{2}-\d{2})"')
# workerd's own start-up failures: "service <name>: …", 'Socket "<name>": …', "error: …".
_FAILURE_LINE = re.compile(r'^(service \S+: |Socket "[^"]*": |error: |Error: )')


def install_dir() -> Path:
    """Where the pinned workerd is (or will be) installed."""
    return cache_root() / "workerd" / WORKERD_VERSION


def _platform_package() -> str:
    machine = platform.machine().lower()
    package = _PLATFORM_PACKAGES.get("aarch64" if machine == "arm64" else machine)
    if platform.system() != "Linux" or package is None:
        raise OperationError(
            f"workerd from npm runs on Linux x86_64 and arm64, not {platform.system()} {machine}",
            hint="run Workers locally on a Linux machine",
        )
    return package


def binary_path(root: Path | None = None) -> Path:
    """The workerd binary inside installation `root` (default: `install_dir()`)."""
    base = install_dir() if root is None else root
    return base / "node_modules" / "@cloudflare" / _platform_package() / "bin" / "workerd"


def _runs(binary: Path) -> bool:
    if not os.access(binary, os.X_OK):
        return False
    done = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.returncode == 0 and done.stdout.startswith("workerd ")


def workerd_binary(progress: Callable[[str], None]) -> Path:
    """The pinned workerd binary, installed from npm the first time (`progress` says so).

    Raises `OperationError` when npm is missing or the installation fails (npm's output as
    detail)."""
    root = install_dir()
    binary = binary_path(root)
    if os.access(binary, os.X_OK):
        return binary
    root.parent.mkdir(parents=True, exist_ok=True)
    with (root.parent / f".{root.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing it: wait for it
        if os.access(binary, os.X_OK):
            return binary
        npm = shutil.which("npm")
        if npm is None:
            raise OperationError(
                "npm is needed to install workerd (the local Workers runtime) and is not on PATH",
                hint="install Node.js 18 or later with npm",
            )
        progress(f"installing workerd {WORKERD_VERSION} from npm (once per machine, ~160 MB)")
        partial = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
        try:
            argv = [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts"]
            argv += ["--prefix", str(partial), f"workerd@{WORKERD_VERSION}"]
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not _runs(binary_path(partial)):
                raise OperationError(
                    f"installing workerd {WORKERD_VERSION} from npm failed",
                    hint="check that the npm registry is reachable (npm config get registry)",
                    detail=(done.stderr + done.stdout).strip()[-3000:],
                )
            partial.chmod(0o755)
            partial.rename(root)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return binary


def newest_supported_date(binary: Path) -> dt.date:
    """The newest compatibility date `binary` accepts, as it says when refusing a Worker dated
    the day after `NEWEST_COMPATIBILITY_DATE`. Raises `OperationError` when it does not say
    (it accepted that date, or failed otherwise)."""
    after = (NEWEST_COMPATIBILITY_DATE + dt.timedelta(days=1)).isoformat()
    config = (
        'using Workerd = import "/workerd/workerd.capnp";\n'
        'const probe :Workerd.Config = (services = [(name = "probe", worker = (modules = '
        f'[(name = "probe.mjs", esModule = "export default {{}}")], compatibilityDate = "{after}"'
        "))]);\n"
    )
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "probe.capnp"
        path.write_text(config)
        try:
            done = subprocess.run(
                [str(binary), "serve", str(path), "probe"],
                capture_output=True, text=True, timeout=10, check=False,
            )  # fmt: skip
            output = done.stderr + done.stdout
        except subprocess.TimeoutExpired:  # it accepted the date and kept running
            output = ""
    found = _NEWEST_DATE.search(output)
    if found is None:
        raise OperationError(
            f"workerd did not refuse compatibility date {after}",
            detail=output.strip()[-2000:],
        )
    return dt.date.fromisoformat(found.group(1))


def failure_line(output: str) -> str | None:
    """The first line of workerd's output that reports why it could not start, if any."""
    for line in output.splitlines():
        if _FAILURE_LINE.match(line.strip()):
            return line.strip()
    return None


@dataclass(frozen=True)
class Served:
    """A workerd that listens: its process (leader of its own session) and its port."""

    process: subprocess.Popen[bytes]
    port: int


def serve(
    binary: Path,
    config: str,
    const: str,
    import_dir: Path,
    *,
    output: int | IO[bytes],
    cwd: Path,
    timeout: float,
    die_with_parent: bool = False,
) -> Served:
    """Start `binary serve /dev/stdin <const> --import-path <import_dir> --control-fd N` in a
    session of its own, with `config` (Cap'n Proto text; constant `const`, one socket named
    `http`) on stdin as an in-memory file, and stdout and stderr to `output`; return once the
    socket listens, the in-memory config emptied.

    `die_with_parent` kills it when the calling thread ends (PR_SET_PDEATHSIG), for a workerd
    attached to the terminal. Raises `OperationError` when it exits or has not listened within
    `timeout` seconds (nothing of it is left running then); its output is wherever `output`
    sent it."""
    memory = os.memfd_create("workerd-config", os.MFD_CLOEXEC)
    control_read, control_write = os.pipe2(os.O_CLOEXEC)
    try:
        os.write(memory, config.encode())
        os.lseek(memory, 0, os.SEEK_SET)
        argv = [str(binary), "serve", "/dev/stdin", const, "--import-path", str(import_dir)]
        argv += ["--control-fd", str(control_write)]
        env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
        process = subprocess.Popen(
            argv,
            stdin=memory,
            stdout=output,
            stderr=output,
            pass_fds=(control_write,),
            start_new_session=True,
            env=env,
            cwd=cwd,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
        os.close(control_write)
        control_write = -1
        port = _wait_listening(control_read, process, timeout)
    finally:
        os.ftruncate(memory, 0)  # the config, secret values included, leaves memory too
        for descriptor in (memory, control_read, control_write):
            if descriptor >= 0:
                os.close(descriptor)
    return Served(process, port)


def _wait_listening(control: int, process: subprocess.Popen[bytes], timeout: float) -> int:
    """The port from workerd's `{"event": "listen", "socket": "http", "port": N}` line."""
    deadline = time.monotonic() + timeout
    buffered = b""
    with selectors.DefaultSelector() as selector:
        selector.register(control, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                stop_process(process, grace=2.0)
                raise OperationError(f"workerd did not listen within {timeout:.0f} s")
            chunk = os.read(control, 4096)
            if not chunk:  # workerd exited: the control pipe's only writer is gone
                code = process.wait()
                raise OperationError(f"workerd exited during start-up (exit code {code})")
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if event.get("event") == "listen" and event.get("socket") == "http":
                        return int(event["port"])


def stop_process(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group of a workerd started by `serve`, SIGKILL after `grace`
    (nothing when it has already ended and been collected)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _die_with_parent() -> None:
    """In the child (as `preexec_fn`): be killed when the thread that started it ends."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
