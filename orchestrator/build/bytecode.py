"""Precompile bytecode for the target's Python, in a form that stays valid inside archives.

Pycs are written in `unchecked-hash` mode: the interpreter trusts them without comparing
source timestamps, so fixed archive timestamps (and read-only task directories) do not make
them stale. Recorded source paths are rewritten to where the files will live at run time
(`prefix`), so the bytes do not depend on the build directory.

`sourceless` turns a compiled dependency tree into bytecode only (the `bytecode_only` target
option): each `.py` that compiled is replaced by its `.pyc`, placed where a sourceless import
finds it (`foo.pyc` beside where `foo.py` was; `__pycache__/` is only consulted when the source
is there). Everything else (extension modules, data files, `.pth`, package metadata, a `.py`
that did not compile) is kept as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from orchestrator.build.interpreters import find_python
from orchestrator.errors import OperationError

PARALLEL_FROM = 200


def compile_tree(
    directory: Path,
    *,
    python: str,
    prefix: str,
    strict: bool = True,
    debug_ranges: bool = True,
) -> None:
    """Compile every .py under `directory` with Python `python`, as if it were at `prefix`.

    With `strict`, a file that does not compile is an error (the server's own code); without,
    it is left uncompiled (third-party packages sometimes ship templates named *.py). Without
    `debug_ranges`, code objects carry line numbers but not the column ranges that Python 3.11+
    uses to underline the failing expression of a source line in tracebacks (a tenth smaller).
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
    env = None if debug_ranges else {**os.environ, "PYTHONNODEBUGRANGES": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0 and strict:
        output = (done.stdout + done.stderr).strip()
        raise OperationError(
            f"precompiling bytecode for Python {python} failed (a syntax error in the code?)",
            detail=output[-2000:],
        )


def cache_tag(python: str) -> str:
    """`sys.implementation.cache_tag` of CPython `python` ("3.12" -> "cpython-312")."""
    major, minor = python.split(".")[:2]
    return f"cpython-{major}{minor}"


def sourceless(source: Path, destination: Path, *, python: str, prefix: str) -> None:
    """Copy the tree `source` (vendored dependencies, as if at `prefix`) to `destination`
    (which must not exist) as bytecode only. Compiled afresh without debug ranges: with the
    sources gone a traceback shows no source line to underline anyway. Deterministic: the same
    tree and Python give the same files and bytes."""
    shutil.copytree(
        source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), symlinks=True
    )
    compile_tree(destination, python=python, prefix=prefix, strict=False, debug_ranges=False)
    place_sourceless(destination, cache_tag(python))


def place_sourceless(directory: Path, tag: str) -> None:
    """Under `directory`, replace each `foo.py` that has `__pycache__/foo.<tag>.pyc` by that
    pyc as `foo.pyc`; then drop the `__pycache__` folders (what is left in them is bytecode of
    other tags or optimisation levels, which nothing imports without its source)."""
    for path in sorted(directory.rglob("*.py")):
        if not path.is_file() or path.is_symlink():
            continue
        compiled = path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc"
        if compiled.is_file():
            os.replace(compiled, path.with_suffix(".pyc"))
            path.unlink()
    for cache in sorted(directory.rglob("__pycache__"), reverse=True):
        if cache.is_dir() and not cache.is_symlink():
            shutil.rmtree(cache)
