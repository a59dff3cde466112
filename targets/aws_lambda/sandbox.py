"""How the local Lambda lays out and starts an execution environment's processes.

- `LambdaFunction`: the function's configuration as the emulator needs it (no secret value):
  its runtime (a managed `python3.x` or `nodejs2x.x`, or the OS-only `provided.al2023`) and
  its layers.
- `ManagedRuntime`: how a managed runtime installed on this machine starts (`python_launch`
  here, `node_runtime.node_launch`): the program its /var/runtime/bootstrap execs, Lambda's
  variables for it. `bootstrap_argv` adds what that bootstrap does with
  `AWS_LAMBDA_EXEC_WRAPPER`: the wrapper is exec'd with the program as its arguments.
- `unpack_task_root`: the zip unpacked once per digest into the cache (content-addressed),
  with the files' Unix modes (a `bootstrap` stays executable).
- `runtime_command`: a managed runtime without layers (nor exec wrapper) runs as one process:
  `unshare` into a private mount namespace (root, or user namespaces), the task root
  bind-mounted **read-only** onto itself, a fresh **tmpfs on /tmp** sized like the function's
  ephemeral storage (left alone when the task root or the runtime lives under /tmp), then
  `exec` AWS's runtime client, so the runtime keeps the pid `Popen` returned (the pid
  `peers.RuntimePeer` admits).
- `holder_command` / `enter_command`: any other function (OS-only runtime, layers, or an exec
  wrapper, which may start what it likes) runs as several processes (extensions, then the
  runtime) sharing one private mount namespace *and* PID namespace. A holder process sets
  the namespaces up (the same read-only task root and /tmp tmpfs, plus the merged layers,
  or nothing, mounted read-only **at /opt**, /proc of the new PID namespace) and stays as
  its PID 1; every process of the environment enters them with `nsenter`. Ending the
  holder ends every process of the environment (the kernel kills a PID namespace with its
  first process), whatever they started.
- No network namespace: the function reaches the network as in the cloud.
- `runtime_environment` / `extension_environment`: the variables Lambda sets for the runtime
  and for extensions (which do not see `_HANDLER`, `LAMBDA_TASK_ROOT`, ...).
- `die_with_parent`: a `preexec_fn` that has the kernel kill a process with the emulator.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import signal
import stat
import tempfile
import time
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HANDLER = "mcp_deploy_lambda.handler"


@dataclass(frozen=True)
class LambdaFunction:
    """A function's configuration as the emulator needs it. Holds no secret value."""

    name: str
    zip_path: Path
    python: str
    memory: int
    timeout: int
    ephemeral_storage: int
    region: str
    variables: Mapping[str, str] = field(default_factory=dict)
    handler: str = HANDLER
    # Lambda's runtime identifier: "python3.12"-style (the default: python{python}),
    # "nodejs22.x"-style, or the OS-only "provided.al2023", which runs the zip's `bootstrap`
    # (else the layers').
    runtime: str = ""
    # Directories merged, in order, into what the function sees as /opt (layers unpacked).
    layers: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if not self.runtime:
            object.__setattr__(self, "runtime", f"python{self.python}")
        object.__setattr__(self, "layers", tuple(Path(layer) for layer in self.layers))

    @property
    def managed_python(self) -> bool:
        """True for a managed Python runtime (AWS's runtime client runs the handler)."""
        return self.runtime.startswith("python")

    @property
    def managed_node(self) -> bool:
        """True for a managed Node.js runtime (`nodejs22.x`: AWS's runtime client on node)."""
        return self.runtime.startswith("nodejs")

    @property
    def managed(self) -> bool:
        """True for a managed runtime (Python or Node.js), False for an OS-only one."""
        return self.managed_python or self.managed_node

    @property
    def node_major(self) -> str:
        """The Node major of a managed Node runtime ("22" of nodejs22.x); "" otherwise."""
        if not self.managed_node:
            return ""
        return self.runtime.removeprefix("nodejs").removesuffix(".x")

    @property
    def exec_wrapper(self) -> str | None:
        """`AWS_LAMBDA_EXEC_WRAPPER` of a managed runtime (an OS-only one ignores it)."""
        return self.variables.get("AWS_LAMBDA_EXEC_WRAPPER") if self.managed else None

    @property
    def single_process(self) -> bool:
        """True when the environment is the runtime process alone (a managed runtime without
        layers or exec wrapper)."""
        return self.managed and not self.layers and not self.exec_wrapper

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as strings); `from_dict` reverses it."""
        data = asdict(self)
        data["zip_path"] = str(self.zip_path)
        data["variables"] = dict(self.variables)
        data["layers"] = [str(layer) for layer in self.layers]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LambdaFunction:
        layers = tuple(Path(layer) for layer in data.get("layers", ()))
        return cls(**{**data, "zip_path": Path(data["zip_path"]), "layers": layers})


@dataclass(frozen=True)
class ManagedRuntime:
    """A managed runtime installed on this machine, as the emulator starts it: `program` is
    what the cloud's /var/runtime/bootstrap execs (argv), `root` the host directory the
    runtime lives in, `variables` Lambda's platform variables for it, `defaults` what its
    bootstrap sets for the runtime process alone when the function did not, `version` the
    INIT_START text."""

    program: tuple[str, ...]
    root: Path
    variables: Mapping[str, str]
    version: str
    defaults: Mapping[str, str] = field(default_factory=dict)


def python_launch(function: LambdaFunction, python: Path, task_root: Path) -> ManagedRuntime:
    """How a managed Python function starts: AWS's runtime client (`python -m awslambdaric
    <handler>`) under `python`, an interpreter that has it."""
    return ManagedRuntime(
        program=(str(python), "-m", "awslambdaric", function.handler),
        root=python,
        variables={
            "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": str(python.parent.parent),
        },
        version=f"python:{function.python} (local emulation, awslambdaric)",
    )


# The exec-wrapper part of a managed runtime's /var/runtime/bootstrap, with its messages and
# exit statuses; the program follows as arguments ("$@").
_EXEC_WRAPPER = (
    'wrapper="$AWS_LAMBDA_EXEC_WRAPPER"; '
    'if [ ! -f "$wrapper" ]; then echo "$wrapper: does not exist"; exit 127; fi; '
    'if [ ! -x "$wrapper" ]; then echo "$wrapper: is not an executable"; exit 126; fi; '
    'exec "$wrapper" "$@"'
)


def bootstrap_argv(function: LambdaFunction, runtime: ManagedRuntime) -> list[str]:
    """argv of a managed runtime's process in a several-process environment: its program, or
    with `AWS_LAMBDA_EXEC_WRAPPER` set, the wrapper (checked to be an executable file, in the
    environment's namespaces) exec'd with the program as its arguments, as Lambda does."""
    if not function.exec_wrapper:
        return list(runtime.program)
    return ["/bin/sh", "-c", _EXEC_WRAPPER, "bootstrap", *runtime.program]


def unpack_task_root(zip_path: Path, cache: Path) -> Path:
    """The zip unpacked under `cache/<name of the zip>` once (content-addressed, reused)."""
    root = cache / zip_path.stem
    if root.is_dir():
        return root
    partial = root.with_name(f"{root.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            path = archive.extract(member, partial)
            mode = member.external_attr >> 16
            if member.create_system == 3 and stat.S_ISREG(mode):  # made on Unix: its mode
                os.chmod(path, stat.S_IMODE(mode) & 0o777)
    try:
        partial.rename(root)
    except OSError:  # another process unpacked it first
        shutil.rmtree(partial, ignore_errors=True)
    return root


def die_with_parent() -> None:
    """In a child process (as `preexec_fn`): be killed when the thread that started it ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _under(path: Path, directory: str) -> bool:
    return path.resolve().is_relative_to(directory)


def runtime_command(
    function: LambdaFunction, task_root: Path, runtime: ManagedRuntime
) -> list[str]:
    """argv of the runtime process of a single-process environment: see the module's
    docstring."""
    root = shlex.quote(str(task_root))
    steps = [f"mount --bind {root} {root}", f"mount -o remount,bind,ro {root}"]
    if not (_under(task_root, "/tmp") or _under(runtime.root, "/tmp")):
        size = function.ephemeral_storage
        steps.append(f"mount -t tmpfs -o size={size}m,mode=1777 lambda-tmp /tmp")
    steps.append(f"exec {shlex.join(runtime.program)}")
    return [*_isolate(), "sh", "-c", " && ".join(steps)]


def _isolate(*extra: str) -> list[str]:
    argv = ["unshare", "--mount", *extra, "--propagation", "private"]
    if os.geteuid() != 0:
        argv.append("--map-root-user")
    return argv


def holder_command(
    function: LambdaFunction, task_root: Path, opt: Path, runtime_root: Path | None = None
) -> list[str]:
    """argv of the holder of a multi-process environment: new mount and PID namespaces (the
    holder's child is PID 1 of the latter, and dies with the holder), /proc of the new PID
    namespace, the task root read-only, `opt` mounted read-only at /opt, a tmpfs on /tmp (as
    in `runtime_command`: not when the task root or the managed runtime, `runtime_root`,
    lives there); then it prints `ready` and waits to be ended."""
    root, layers = shlex.quote(str(task_root)), shlex.quote(str(opt))
    steps = [
        f"mount --bind {root} {root}",
        f"mount -o remount,bind,ro {root}",
        f"mount --bind {layers} /opt",
        "mount -o remount,bind,ro /opt",
    ]
    hidden = _under(task_root, "/tmp") or (
        runtime_root is not None and _under(runtime_root, "/tmp")
    )
    if not hidden:  # /opt is mounted first: it keeps a layer that lives under /tmp
        size = function.ephemeral_storage
        steps.append(f"mount -t tmpfs -o size={size}m,mode=1777 lambda-tmp /tmp")
    steps += ["echo ready", "exec sleep infinity"]
    isolate = _isolate("--pid", "--fork", "--kill-child", "--mount-proc")
    return [*isolate, "sh", "-c", " && ".join(steps)]


def enter_command(init: int, argv: Sequence[str], cwd: Path | str) -> list[str]:
    """argv that runs `argv` in the namespaces of the environment whose PID 1 is host pid
    `init` (nsenter forks once: the program is the child of the process `Popen` returns)."""
    enter = ["nsenter", f"--target={init}", "--mount", "--pid", f"--wd={cwd}"]
    if os.geteuid() != 0:
        enter += ["--user", "--preserve-credentials"]
    return [*enter, "--", *argv]


def merge_layers(layers: Sequence[Path], into: Path) -> Path:
    """The directory the function sees as /opt: `layers` merged in order (a later layer's file
    replaces an earlier one's) into the new directory `into` (hard links where possible)."""
    into.mkdir(parents=True)
    for layer in layers:
        for source in sorted(layer.rglob("*")):
            target = into / source.relative_to(layer)
            if source.is_dir() and not source.is_symlink():
                target.mkdir(exist_ok=True)
                continue
            if target.exists() or target.is_symlink():
                target.unlink()
            if source.is_symlink():
                target.symlink_to(os.readlink(source))
                continue
            try:
                os.link(source, target)
            except OSError:  # another file system
                shutil.copy2(source, target)
    return into


def lay_out_opt(layers: Sequence[Path], cache: Path) -> tuple[Path, Path | None]:
    """What a several-process environment sees as /opt, and the scratch directory to remove
    once it is done (None for a layer's own directory): one layer as it is, several (or none:
    an empty /opt) merged into a new directory under `cache`."""
    if len(layers) == 1:
        return layers[0], None
    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".opt-", dir=cache))
    return merge_layers(layers, scratch / "opt"), scratch


def extension_paths(opt: Path) -> list[Path]:
    """The executables Lambda starts as external extensions: the files of /opt/extensions
    (here `opt/extensions`), in name order."""
    directory = opt / "extensions"
    if not directory.is_dir():
        return []
    return sorted(
        (path for path in directory.iterdir() if path.is_file() and os.access(path, os.X_OK)),
        key=lambda path: path.name,
    )


def bootstrap_of(task_root: Path, opt: Path) -> Path | None:
    """The runtime of an OS-only function: the zip's `bootstrap`, else the layers' (/opt), as
    Lambda picks it; None when neither is an executable file."""
    for candidate in (task_root / "bootstrap", opt / "bootstrap"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


RUNTIME_DIR = "/var/runtime"  # LAMBDA_RUNTIME_DIR of an OS-only runtime (empty there)
# What extensions do not see of the runtime's variables (Lambda's Extensions API page), with
# every variable starting with "_".
_NOT_FOR_EXTENSIONS = frozenset(
    {
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_XRAY_CONTEXT_MISSING",
        "AWS_XRAY_DAEMON_ADDRESS",
        "LAMBDA_RUNTIME_DIR",
        "LAMBDA_TASK_ROOT",
    }
)


def runtime_environment(
    function: LambdaFunction, task_root: Path, runtime: ManagedRuntime | None, runtime_api: str
) -> dict[str, str]:
    """The variables Lambda sets for the runtime (fresh log stream name each time);
    `runtime_api` is `AWS_LAMBDA_RUNTIME_API` (host:port), `runtime` the managed runtime
    (None for an OS-only runtime, which gets no AWS_EXECUTION_ENV). The function's own
    variables, credentials, the secret endpoint and the runtime's `defaults` are the
    caller's to add."""
    stream = time.strftime("%Y/%m/%d") + "/[$LATEST]" + uuid.uuid4().hex
    if runtime is not None:
        platform = dict(runtime.variables)
    else:
        libraries = [
            "/lib64",
            "/usr/lib64",
            RUNTIME_DIR,
            f"{RUNTIME_DIR}/lib",
            str(task_root),
            f"{task_root}/lib",
            "/opt/lib",
        ]
        platform = {
            "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            "LD_LIBRARY_PATH": ":".join(libraries),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": RUNTIME_DIR,
        }
    environment = {
        **platform,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "_HANDLER": function.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": function.region,
        "AWS_DEFAULT_REGION": function.region,
    }
    if runtime is None:
        del environment["AWS_EXECUTION_ENV"]
    return environment


def extension_environment(runtime: Mapping[str, str]) -> dict[str, str]:
    """An extension's variables: the runtime's (`runtime`, complete), but those Lambda keeps
    from extensions."""
    return {
        name: value
        for name, value in runtime.items()
        if name not in _NOT_FOR_EXTENSIONS and not name.startswith("_")
    }
