"""Precompile bytecode for the target's Python, in a form that stays valid inside archives.

Pycs are written in `unchecked-hash` mode: the interpreter trusts them without comparing
source timestamps, so fixed archive timestamps (and read-only task directories) do not make
them stale. Recorded source paths are rewritten to where the files will live at run time
(`prefix`), so the bytes do not depend on the build directory.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.build.interpreters import find_python
from orchestrator.errors import OperationError

PARALLEL_FROM = 200


def compile_tree(directory: Path, *, python: str, prefix: str, strict: bool = True) -> None:
    """Compile every .py under `directory` with Python `python`, as if it were at `prefix`.

    With `strict`, a file that does not compile is an error (the server's own code); without,
    it is left uncompiled (third-party packages sometimes ship templates named *.py).
    """
    # A process pool costs ~0.1 s to start: worth it for a dependency tree, not for an app.
    sources = sum(1 for _ in directory.rglob("*.py"))
    argv = [
        find_python(python),
        "-m",
        "compileall",
        "-q",
        "-j",
        "0" if sources > PARALLEL_FROM else "1",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(directory),
        "-p",
        prefix,
        str(directory),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0 and strict:
        output = (done.stdout + done.stderr).strip()
        raise OperationError(
            f"precompiling bytecode for Python {python} failed (a syntax error in the code?)",
            detail=output[-2000:],
        )
