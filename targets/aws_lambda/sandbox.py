"""How the local Lambda starts an execution environment's runtime process.

- `LambdaFunction`: the function's configuration as the emulator needs it (no secret value).
- `unpack_task_root`: the zip unpacked once per digest into the cache (content-addressed).
- `runtime_command`: `unshare` into a private mount namespace (root, or user namespaces), the
  task root bind-mounted **read-only** onto itself, a fresh **tmpfs on /tmp** sized like the
  function's ephemeral storage (left alone when the task root or the runtime lives under
  /tmp), then `exec` AWS's runtime client, so the runtime keeps the pid `Popen` returned (the
  pid `peers.RuntimePeer` admits). No network namespace: the function reaches the network as
  in the cloud.
- `runtime_environment`: the environment variables Lambda sets, plus the function's config.
- `die_with_parent`: a `preexec_fn` that has the kernel kill the runtime with the emulator.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import signal
import time
import uuid
import zipfile
from collections.abc import Mapping
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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["zip_path"] = str(self.zip_path)
        data["variables"] = dict(self.variables)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LambdaFunction:
        return cls(**{**data, "zip_path": Path(data["zip_path"])})


def unpack_task_root(zip_path: Path, cache: Path) -> Path:
    """The zip unpacked under `cache/<name of the zip>` once (content-addressed, reused)."""
    root = cache / zip_path.stem
    if root.is_dir():
        return root
    partial = root.with_name(f"{root.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(partial)
    try:
        partial.rename(root)
    except OSError:  # another process unpacked it first
        shutil.rmtree(partial, ignore_errors=True)
    return root


def die_with_parent() -> None:
    """In the runtime's child process: be killed when the thread that started it ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _under(path: Path, directory: str) -> bool:
    return path.resolve().is_relative_to(directory)


def runtime_command(function: LambdaFunction, task_root: Path, python: Path) -> list[str]:
    """argv of the runtime process: see the module's docstring."""
    root = shlex.quote(str(task_root))
    steps = [f"mount --bind {root} {root}", f"mount -o remount,bind,ro {root}"]
    if not (_under(task_root, "/tmp") or _under(python, "/tmp")):
        size = function.ephemeral_storage
        steps.append(f"mount -t tmpfs -o size={size}m,mode=1777 lambda-tmp /tmp")
    steps.append(f"exec {shlex.quote(str(python))} -m awslambdaric {shlex.quote(function.handler)}")
    isolate = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        isolate.append("--map-root-user")
    return [*isolate, "sh", "-c", " && ".join(steps)]


def runtime_environment(
    function: LambdaFunction, task_root: Path, python: Path, runtime_api: str
) -> dict[str, str]:
    """The variables Lambda sets (fresh log stream name each time), then the function's own;
    `runtime_api` is `AWS_LAMBDA_RUNTIME_API` (host:port). Credentials and the secret
    endpoint are the caller's to add."""
    stream = time.strftime("%Y/%m/%d") + "/[$LATEST]" + uuid.uuid4().hex
    return {
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(python.parent.parent),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "_HANDLER": function.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{function.python}",
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": function.region,
        "AWS_DEFAULT_REGION": function.region,
    }
