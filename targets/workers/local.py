"""`--env local` for Workers: a JS module Worker served by workerd, Cloudflare's own runtime,
from npm (`targets.workers.workerd`), on 127.0.0.1.

The artifact is a workers-bundle zip with `mcp_deploy_worker.json` at its root, naming the main
module, every module and its type, the compatibility date and flags (the format is written down
in `targets.workers.workerd_config`; the packager writes it). A Python Worker bundle (none of
that file, its own `mcp-deploy-workers.json`) is refused: Python Workers cannot start offline,
since workerd downloads the Pyodide runtime bundle and packages from Cloudflare at start-up.

- The bundle's modules are unpacked once per digest under `cache_root()/workers-local/bundles`,
  and workerd embeds them from there (its import path).
- Config values become `text` bindings, as Cloudflare's `plain_text`; secrets become `text`
  bindings too, as Cloudflare's `secret_text` (a Worker sees the two alike: `env.NAME`, and
  `process.env.NAME` with `nodejs_compat` from compatibility date 2025-04-01, as on Cloudflare).
- Secret values never reach a disk, argv, the environment or a log: the config holding them is
  handed to workerd as an in-memory file on its stdin, emptied as soon as workerd listens
  (`workerd.serve`). `fromEnvironment` bindings were not used: they would leave the values in
  workerd's environment (/proc/<pid>/environ) for its whole life.
- The Worker knows the URL its clients use: the text binding `MCP_DEPLOY_PUBLIC_URL` is
  `http://127.0.0.1:<port>` (the port chosen before workerd starts), which the Node shim's
  gate takes as its public base URL (the OAuth resource, the metadata URL, the Origin it lets
  through) instead of the workers.dev origin of `request.url`. On Cloudflare no such binding
  is set: the gate uses `request.url`'s origin (workers.dev or the custom domain).
- The Worker's outbound `fetch()` reaches the public internet (as on Cloudflare) and, in this
  emulation only, this machine's loopback addresses (`workerd_config.OUTBOUND_ALLOW`): so a
  Worker with `auth.mode = "oauth"` can fetch a loopback issuer's metadata and keys. On
  Cloudflare the issuer must be reachable from the internet.
- Cloudflare's edge is a second Worker in the same workerd, on the public port
  (`workerd_config.EDGE_WORKER`): the Worker sees `https://<script>.<subdomain>.workers.dev/…`
  as its URL and Host, as on workers.dev, where `<script>` is the cloud program's script name
  (`{server}-{environment}`, `script_name`) and `<subdomain>` a stable stand-in for the
  account's workers.dev subdomain, which cannot be known offline. (Cloud Run's front door, a
  proxy process of its own, is not reused: its headers are Cloud Run's, it watches a container,
  and a workerd-native edge costs no process.)
- In the background, workerd itself is the process: it runs in a session of its own that
  outlives the CLI, its stdout and stderr (the Worker's console output) go to
  `<state_dir>/workerd.log`, and the handle holds its pid, start time, log and Host. `find`
  recognises it by the config constant on its command line (`workerd_config.const_name` of the
  state dir); `stop` is SIGTERM to its process group, SIGKILL after `STOP_GRACE` seconds.

Differences from Cloudflare: workerd as run here enforces none of Cloudflare's limits but the
100 MB request body (only when declared by Content-Length): no CPU time limit (`cpu_ms` is not
applied), no 128 MB memory limit per isolate, no subrequest limit, no start-up CPU budget for
the global scope. One isolate serves every request, so global state lives longer than on
Cloudflare, which spreads requests over isolates and machines. `request.cf` has no geolocation
(country, city, ASN) and its colo is `LCL`, as is the `CF-Ray`'s; responses do not gain
Cloudflare's `Server`/`CF-Ray` headers. Flags workerd calls experimental are refused (no
`--experimental`). Logs are workerd's console output, not Workers Logs records.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from orchestrator import processes
from orchestrator.artifacts import Artifact
from orchestrator.errors import OperationError
from orchestrator.paths import cache_root
from targets.base import LocalHandle, LocalLaunch, LocalProblem, TargetOptions
from targets.workers import WorkersOptions
from targets.workers.workerd import (
    NEWEST_COMPATIBILITY_DATE,
    WORKERD_VERSION,
    failure_line,
    serve,
    stop_process,
    workerd_binary,
)
from targets.workers.workerd_config import (
    METADATA_FILE,
    WorkerBundle,
    config_text,
    const_name,
    text_bindings,
)

START_TIMEOUT = 60.0
STOP_GRACE = 5.0
LOG_NAME = "workerd.log"
PYTHON_FLAG = "python_workers"
PYTHON_MANIFEST = "mcp-deploy-workers.json"  # a Python bundle's (targets.workers.package)
MAX_SCRIPT_NAME = 63  # as the cloud program (stacks/workers.py) names scripts
PUBLIC_URL_BINDING = "MCP_DEPLOY_PUBLIC_URL"
_NOT_IN_NAME = re.compile(r"[^a-z0-9-]+")
_PYTHON_OFFLINE = (
    "Python Workers cannot start offline: workerd downloads the Pyodide runtime bundle and "
    "its packages from Cloudflare when a Python Worker starts"
)
_PYTHON_HINT = (
    "deploy the Python Worker to a Cloudflare environment to run it, or prove the server "
    "locally on another target (lambda, cloudrun); JS module Workers run locally"
)


def problem(options: TargetOptions, runtime: str = "python") -> LocalProblem | None:
    """A Python Worker cannot run here (a `runtime` other than "node", or `python_workers`
    among the flags), nor a compatibility date workerd does not know yet. (`start_background`
    refuses a Python bundle in any case.)"""
    assert isinstance(options, WorkersOptions)
    if runtime != "node" or PYTHON_FLAG in options.compatibility_flags:
        return LocalProblem("compatibility_flags", _PYTHON_OFFLINE, _PYTHON_HINT)
    if options.compatibility_date > NEWEST_COMPATIBILITY_DATE:
        return LocalProblem("compatibility_date", *_date_problem(options.compatibility_date))
    return None


def _date_problem(date: object) -> tuple[str, str]:
    newest = NEWEST_COMPATIBILITY_DATE.isoformat()
    return (
        f"compatibility date {date} is newer than the newest that workerd {WORKERD_VERSION}, "
        f"the local Workers runtime, supports ({newest}); workerd refuses later dates",
        f'set targets.workers.compatibility_date = "{newest}" (or earlier) to prove this '
        "Worker here; a newer workerd comes with a newer mcp-deploy",
    )


def script_name(server: str, environment: str) -> str:
    """The Workers script name the cloud program gives the deployment: `{server}-{environment}`
    in lowercase letters, digits and `-`, at most 63 characters (a longer one: its head, `-`
    and 8 hex of the sha256 of the whole)."""
    whole = f"{server}-{environment}"
    name = _NOT_IN_NAME.sub("-", whole.lower()).strip("-")
    if len(name) <= MAX_SCRIPT_NAME:
        return name
    digest = hashlib.sha256(whole.encode()).hexdigest()[:8]
    return f"{name[: MAX_SCRIPT_NAME - 9].rstrip('-')}-{digest}"


def presented_host(launch: LocalLaunch) -> str:
    """The Host the Worker sees: `<script>.<subdomain>.workers.dev`, the subdomain a stable
    10-character stand-in derived from the account id (the account's own is chosen on
    Cloudflare and cannot be known offline)."""
    assert isinstance(launch.options, WorkersOptions)
    account = launch.options.account_id or ""
    digest = hashlib.sha256(f"workers.dev\0{account}".encode()).digest()
    subdomain = base64.b32encode(digest).decode().lower()[:10]
    return f"{script_name(launch.server, launch.environment)}.{subdomain}.workers.dev"


def read_bundle(path: Path) -> WorkerBundle:
    """The bundle's metadata, checked: its modules are in the zip, it is no Python Worker,
    workerd knows its compatibility date. `OperationError` otherwise."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = {info.filename for info in archive.infolist() if not info.is_dir()}
            if METADATA_FILE not in names:
                if PYTHON_MANIFEST in names:
                    raise OperationError(_PYTHON_OFFLINE, hint=_PYTHON_HINT)
                raise OperationError(
                    f"the artifact is not a JS module Worker bundle: it has no {METADATA_FILE}",
                    hint="rebuild it with `mcp-deploy build --target workers`",
                )
            metadata = archive.read(METADATA_FILE)
    except (OSError, zipfile.BadZipFile) as error:
        raise OperationError(f"cannot read the Workers bundle {path}: {error}") from None
    try:
        bundle = WorkerBundle.from_json(metadata)
    except ValueError as error:
        raise OperationError(
            f"the bundle's {METADATA_FILE} is invalid: {error}",
            hint="rebuild the artifact with this version of mcp-deploy",
        ) from None
    missing = [module.name for module in bundle.modules if module.name not in names]
    if missing:
        raise OperationError(f"module {missing[0]!r} is listed in {METADATA_FILE} but not in "
                             "the bundle", hint="rebuild the artifact")  # fmt: skip
    if PYTHON_FLAG in bundle.compatibility_flags:
        raise OperationError(_PYTHON_OFFLINE, hint=_PYTHON_HINT)
    if bundle.compatibility_date > NEWEST_COMPATIBILITY_DATE:
        message, hint = _date_problem(bundle.compatibility_date)
        raise OperationError(message, hint=hint)
    return bundle


def unpack(artifact: Artifact, bundle: WorkerBundle) -> Path:
    """The bundle's modules as files, unpacked once per digest into the cache (into a
    temporary directory renamed into place: a reader never sees half of it)."""
    root = cache_root() / "workers-local" / "bundles" / artifact.digest.removeprefix("sha256:")
    if root.is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{root.name[:12]}.", dir=root.parent))
    try:
        with zipfile.ZipFile(artifact.path) as archive:
            for module in bundle.modules:
                target = partial / module.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(module.name))
        partial.rename(root)
    except OSError:
        if not root.is_dir():  # not merely another process unpacking it first
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return root


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _prepare(launch: LocalLaunch, const: str) -> tuple[Path, Path, str, str]:
    """(workerd, the unpacked bundle, the config text with constant `const`, the Host) for
    `launch`. The config holds the secret values: it lives in memory only. The port is
    `launch.port`, or a free one chosen now: the `MCP_DEPLOY_PUBLIC_URL` binding names it."""
    bundle = read_bundle(launch.artifact.path)
    binary = workerd_binary(_to_stderr)
    directory = unpack(launch.artifact, bundle)
    host = presented_host(launch)
    port = launch.port or free_port()
    variables = {**launch.variables, PUBLIC_URL_BINDING: f"http://127.0.0.1:{port}"}
    try:
        bindings = text_bindings(variables, launch.secrets)
        config = config_text(
            const,
            script_name(launch.server, launch.environment),
            bundle,
            bindings,
            host,
            port,
        )
    except ValueError as error:  # its message names no value
        raise OperationError(f"cannot configure the local Worker: {error}") from None
    return binary, directory, config, host


def _to_stderr(message: str) -> None:
    print(f"workers: {message}", file=sys.stderr, flush=True)


def _failed(error: OperationError, output: str, port: int) -> OperationError:
    """`error` from `workerd.serve`, with workerd's own reason and its output as detail."""
    reason = failure_line(output)
    taken = "Address already in use" in output
    return OperationError(
        error.message + (f": {reason}" if reason else ""),
        hint=f"--port picks another port than {port}" if taken else "workerd's output is below",
        detail=output,
    )


def start_background(launch: LocalLaunch) -> LocalHandle:
    """Start workerd in a session of its own (see the module docstring); return once it
    listens. `OperationError` with workerd's output as detail when it does not start."""
    const = const_name(launch.state_dir)
    binary, directory, config, host = _prepare(launch, const)
    log = launch.state_dir / LOG_NAME
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)  # one log per deployment, owner-only
    os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with log.open("ab") as sink:
        try:
            served = serve(
                binary, config, const, directory,
                output=sink, cwd=launch.state_dir, timeout=START_TIMEOUT,
            )  # fmt: skip
        except OperationError as error:
            raise _failed(error, processes.tail(log), launch.port) from None
    pid = served.process.pid
    started = processes.start_time(pid)
    if started is None:
        raise OperationError("workerd exited right after it started", detail=processes.tail(log))
    return LocalHandle(
        url=f"http://127.0.0.1:{served.port}{launch.mcp_path}",
        data={"pid": pid, "started": started, "log": str(log), "host": host},
    )


def run_foreground(launch: LocalLaunch, ready: Callable[[str], None]) -> None:
    """Serve until KeyboardInterrupt (then SIGTERM to workerd); its output goes to stderr.
    `OperationError` when workerd does not start or exits by itself."""
    const = const_name(launch.state_dir) + "Run"  # not what `find` looks for
    binary, directory, config, _ = _prepare(launch, const)
    launch.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        served = serve(
            binary, config, const, directory,
            output=sys.stderr.fileno(), cwd=launch.state_dir,
            timeout=START_TIMEOUT, die_with_parent=True,
        )  # fmt: skip
    except OperationError as error:
        raise OperationError(error.message, hint="workerd's output is above") from None
    try:
        ready(f"http://127.0.0.1:{served.port}{launch.mcp_path}")
        code = served.process.wait()
        raise OperationError(f"workerd exited (exit code {code})", hint="its output is above")
    finally:
        stop_process(served.process, STOP_GRACE)


def alive(handle: LocalHandle) -> bool:
    return processes.alive(int(handle.data["pid"]), str(handle.data["started"]))


def stop(handle: LocalHandle) -> None:
    if not processes.stop_group(int(handle.data["pid"]), str(handle.data["started"]), STOP_GRACE):
        raise OperationError(f"could not stop the local Worker (workerd, pid {handle.data['pid']})")


def log_tail(handle: LocalHandle, lines: int = 40) -> str:
    return processes.tail(Path(str(handle.data["log"])), lines)


def follow_log(handle: LocalHandle) -> Iterator[str]:
    return processes.follow(Path(str(handle.data["log"])), lambda: alive(handle))


def find(state_dir: Path, mcp_path: str) -> list[LocalHandle]:
    """The background workerd processes of `state_dir`: those whose command line names its
    config constant, leading their own process group; the URL from the port they listen on."""
    log = state_dir / LOG_NAME
    found = []
    for pid in processes.find_by_argv("serve", "/dev/stdin", const_name(state_dir)):
        started = processes.start_time(pid)
        try:
            leads = os.getpgid(pid) == pid
        except ProcessLookupError:
            continue
        if started is None or not leads:
            continue
        ports = processes.listening_ports(pid)
        url = f"http://127.0.0.1:{ports[0]}{mcp_path}" if ports else ""
        found.append(LocalHandle(url=url, data={"pid": pid, "started": started, "log": str(log)}))
    return found
