"""The Lambda runtime on this machine: AWS's runtime client for the spec's Python version.

A small virtual environment per Python minor version holds only `awslambdaric` (and what it
needs), like Lambda's managed runtime holds only its runtime client: the server's own
dependencies come from the zip alone. Environments are cached under the mcp-deploy cache.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from orchestrator.build.interpreters import find_python
from orchestrator.build.vendor import cache_root, uv_binary
from orchestrator.errors import OperationError

AWSLAMBDARIC = "awslambdaric==4.2.2"


def runtime_python(minor: str) -> Path:
    """Path of a Python `minor` interpreter that can run `python -m awslambdaric`."""
    home = cache_root() / "lambda-runtime" / f"python{minor}-{AWSLAMBDARIC.replace('==', '-')}"
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
