"""The Lambda runtime on this machine: AWS's runtime client for the spec's Python version.

A small virtual environment per Python minor version holds what Lambda's managed Python
runtime holds: its runtime client `awslambdaric` and the AWS SDK (`boto3`, which the shim uses
to read secrets at cold start). The server's own dependencies come from the zip alone.
Environments are cached under the mcp-deploy cache.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from orchestrator.build.interpreters import find_python
from orchestrator.build.vendor import uv_binary
from orchestrator.errors import OperationError
from orchestrator.paths import cache_root

AWSLAMBDARIC = "awslambdaric==4.2.2"
BOTO3 = "boto3==1.44.5"


def runtime_python(minor: str) -> Path:
    """Path of a Python `minor` interpreter that can run `python -m awslambdaric`."""
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
