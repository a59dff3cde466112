"""Find a local interpreter of a given Python minor version (to precompile bytecode for it).

Bytecode is version-specific, so an artifact for Python 3.12 is compiled by a 3.12. Looked up,
in order: MCP_DEPLOY_PYTHON_<MAJOR>_<MINOR> (a path), pyenv's versions, then `pythonX.Y` on
PATH; each candidate is asked for its version before it is used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from orchestrator.errors import OperationError


def _reports(executable: str, minor: str) -> bool:
    try:
        out = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == minor


def _candidates(minor: str) -> list[str]:
    found: list[str] = []
    override = os.environ.get("MCP_DEPLOY_PYTHON_" + minor.replace(".", "_"))
    if override:
        found.append(override)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found += [
        str(p) for p in sorted((pyenv_root / "versions").glob(f"{minor}.*/bin/python{minor}"))
    ]
    on_path = shutil.which(f"python{minor}")
    if on_path:
        found.append(on_path)
    return found


@cache
def find_python(minor: str) -> str:
    """Path of a working `python<minor>`; `OperationError` naming the ways out otherwise."""
    for candidate in _candidates(minor):
        if _reports(candidate, minor):
            return candidate
    variable = "MCP_DEPLOY_PYTHON_" + minor.replace(".", "_")
    raise OperationError(
        f'no Python {minor} interpreter found to precompile bytecode for server.python = "{minor}"',
        hint=f"install Python {minor} (pyenv, uv python install, apt), or point {variable} at one",
    )
