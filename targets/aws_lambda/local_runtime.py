"""The Lambda runtimes on this machine: which managed runtime runs a function, and the Python
one (AWS's runtime client for the spec's Python version).

A small virtual environment per Python minor version holds what Lambda's managed Python
runtime holds: its runtime client `awslambdaric` and the AWS SDK (`boto3`; the shim no longer
uses it: it reads the secrets with its own SigV4 client, `mcp_deploy_secrets.py`, but servers
may rely on the SDK being there, as in the cloud). The server's own dependencies come from the
zip alone.
Environments are cached under the mcp-deploy cache. The Node.js runtimes are
`node_runtime.py`'s. The emulator imports this module: what only a build needs is imported
when it is needed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from targets.aws_lambda.sandbox import LambdaFunction, ManagedRuntime, python_launch

if TYPE_CHECKING:
    from targets.aws_lambda.node_runtime import NodeRuntime

AWSLAMBDARIC = "awslambdaric==4.2.2"
BOTO3 = "boto3==1.44.5"


def managed_launch(
    function: LambdaFunction,
    task_root: Path,
    *,
    python: Path | None,
    node: NodeRuntime | None,
    progress: Callable[[str], None],
) -> ManagedRuntime | None:
    """How `function`'s managed runtime starts (None for an OS-only runtime): a Python one
    under `python` (required: ValueError without it), a Node one on `node`, else on the
    machine's cached runtime of its major (built first when missing; `progress` hears it)."""
    if function.managed_python:
        if python is None:
            raise ValueError(f"{function.runtime} needs runtime_python")
        return python_launch(function, python, task_root)
    if not function.managed_node:
        return None
    from targets.aws_lambda.node_runtime import node_launch, node_runtime

    runtime = node or node_runtime(function.node_major, progress)
    return node_launch(function, runtime, task_root)


def runtime_python(minor: str) -> Path:
    """Path of a Python `minor` interpreter that can run `python -m awslambdaric`."""
    from orchestrator.build.interpreters import find_python
    from orchestrator.build.vendor import uv_binary
    from orchestrator.errors import OperationError
    from orchestrator.paths import cache_root

    home = (
        cache_root()
        / "lambda-runtime"
        / f"python{minor}-{AWSLAMBDARIC.replace('==', '-')}-{BOTO3.replace('==', '-')}"
    )
    python = home / "bin" / "python"
    if python.is_file():
        return python
    partial = home.with_name(home.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    uv = uv_binary()
    for argv in (
        [uv, "venv", "--quiet", "--python", find_python(minor), str(partial)],
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(partial / "bin" / "python"),
            "--only-binary",
            ":all:",
            "--compile-bytecode",
            AWSLAMBDARIC,
            BOTO3,
        ],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise OperationError(
                f"setting up the local Lambda runtime for Python {minor} failed",
                detail=(done.stderr + done.stdout).strip()[-2000:],
            )
    partial.rename(home)
    return python
