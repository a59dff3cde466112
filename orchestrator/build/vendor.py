"""Vendor a server's dependencies for the target platform, with uv, cached.

Requirements come from the project directory (the spec's), first match wins:
`uv.lock` (exported without dev dependencies or the project itself), `requirements.txt`, or
`[project].dependencies` of `pyproject.toml`. They are installed into a directory for the
target's Python minor version and CPU, binary wheels only, with bytecode precompiled for that
Python (unchecked-hash pycs, valid however the files' timestamps change in an archive).

The result is cached under the key (requirements hash, platform, Python version, install
prefix, uv version): a rebuild whose dependencies did not change reuses the directory as is.
With `bytecode_only`, a second directory derived from it (cached under its own key) holds the
same set as bytecode only (`orchestrator.build.bytecode.sourceless`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.build.bytecode import compile_tree, sourceless
from orchestrator.errors import OperationError
from orchestrator.paths import cache_root

# Bump when what a cached set holds changes (its key then changes: old sets are not reused).
CACHE_FORMAT = "2"  # 2: RECORD lists only the files kept
BYTECODE_ONLY_FORMAT = "1"
UV_PLATFORMS = {"x86_64": "x86_64-manylinux2014", "arm64": "aarch64-manylinux2014"}
# Removed from vendored trees: never imported at run time.
DEAD_WEIGHT_DIRS = frozenset({"__pycache__", "bin"})
DEAD_WEIGHT_SUFFIXES = (".pyi", ".pyc")


@dataclass(frozen=True)
class Requirements:
    """Pinned requirement lines and the file they were read from."""

    lines: tuple[str, ...]
    origin: Path

    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.lines).encode()).hexdigest()


def uv_binary() -> str:
    """The uv executable shipped with the `uv` package mcp-deploy depends on."""
    from uv import find_uv_bin

    return find_uv_bin()


def find_requirements(project_dir: Path) -> Requirements | None:
    """The project's dependencies (see module docstring), or None when it declares none."""
    lock = project_dir / "uv.lock"
    if lock.is_file():
        exported = _run(
            [
                uv_binary(),
                "export",
                "--frozen",
                "--no-dev",
                "--no-hashes",
                "--no-emit-project",
                "--no-header",
                "--format",
                "requirements-txt",
            ],
            cwd=project_dir,
            what=f"reading {lock}",
        )
        return Requirements(_requirement_lines(exported), lock)
    requirements = project_dir / "requirements.txt"
    if requirements.is_file():
        return Requirements(
            _requirement_lines(requirements.read_text(encoding="utf-8")), requirements
        )
    pyproject = project_dir / "pyproject.toml"
    if pyproject.is_file():
        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except tomllib.TOMLDecodeError as exc:
            raise OperationError(f"{pyproject} is not valid TOML: {exc}") from None
        dependencies = project.get("dependencies", []) if isinstance(project, dict) else []
        if dependencies:
            return Requirements(tuple(str(d) for d in dependencies), pyproject)
    return None


def _requirement_lines(text: str) -> tuple[str, ...]:
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return tuple(lines)


def vendor(
    requirements: tuple[str, ...],
    *,
    arch: str,
    python: str,
    prefix: str,
    origin: str,
    bytecode_only: bool = False,
) -> tuple[Path, str]:
    """Install `requirements` for (arch, python) and compile them as if under `prefix`;
    with `bytecode_only`, as bytecode only (sources dropped where they compiled).

    Returns (directory, cache key). The directory is shared and must not be modified.
    Raises `OperationError` naming the package and platform when a wheel is missing.
    """
    site, key = _vendor(requirements, arch=arch, python=python, prefix=prefix, origin=origin)
    if not bytecode_only:
        return site, key
    material = f"{key}\nbytecode-only\n{BYTECODE_ONLY_FORMAT}"
    derived = hashlib.sha256(material.encode()).hexdigest()[:32]
    destination = site.parent / derived
    if destination.is_dir():
        return destination, derived
    work = Path(tempfile.mkdtemp(prefix=f".{derived}.", dir=destination.parent))
    try:
        sourceless(site, work / "site", python=python, prefix=prefix)
        try:
            os.replace(work / "site", destination)
        except OSError:
            if not destination.is_dir():  # else another build made the same set meanwhile
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return destination, derived


def _vendor(
    requirements: tuple[str, ...], *, arch: str, python: str, prefix: str, origin: str
) -> tuple[Path, str]:
    platform = UV_PLATFORMS[arch]
    uv = uv_binary()
    uv_version = importlib.metadata.version("uv")
    key_material = "\n".join(
        [CACHE_FORMAT, uv_version, platform, python, prefix, *sorted(requirements)]
    )
    key = hashlib.sha256(key_material.encode()).hexdigest()[:32]
    destination = cache_root() / "vendor" / key
    if destination.is_dir():
        return destination, key
    destination.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=destination.parent))
    try:
        site = work / "site"
        if requirements:
            requirement_file = work / "requirements.txt"
            requirement_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
            _run(
                [
                    uv,
                    "pip",
                    "install",
                    "--quiet",
                    "--no-progress",
                    "--link-mode",
                    "copy",
                    "--target",
                    str(site),
                    "--python-platform",
                    platform,
                    "--python-version",
                    python,
                    "--only-binary",
                    ":all:",
                    "--no-compile",
                    "-r",
                    str(requirement_file),
                ],
                what=f"installing the dependencies of {origin} for {platform}, Python {python}",
                on_failure=lambda output: _missing_wheel(output, platform, python),
            )
        else:
            site.mkdir()
        _strip(site)
        compile_tree(site, python=python, prefix=prefix, strict=False)
        os.replace(site, destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return destination, key


def _strip(site: Path) -> None:
    """Remove the dead weight, and its lines from each package's RECORD: a console script in
    `bin/` carries the installing interpreter's path in its shebang, so its RECORD line (its
    hash and size) would make the set depend on where mcp-deploy is installed."""
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and path.name in DEAD_WEIGHT_DIRS:
            shutil.rmtree(path)
        elif path.is_file() and path.name.endswith(DEAD_WEIGHT_SUFFIXES):
            path.unlink()
    for record in sorted(site.glob("*.dist-info/RECORD")):
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if _listed_file_kept(site, line)]
        if kept != lines:
            record.write_text("".join(kept), encoding="utf-8")


def _listed_file_kept(site: Path, line: str) -> bool:
    """A RECORD line (CSV: path,hash,size) whose file is still in `site` (blank lines go)."""
    import csv

    fields = next(csv.reader([line]), [])
    return bool(fields and fields[0]) and (site / fields[0]).exists()


# uv: "Because docopt==0.6.2 has no usable wheels ..." / "Because all versions of docopt have
# no usable wheels ..." / "Wheels are required for `docopt` because building from source ..."
_NO_WHEEL = re.compile(
    r"Because (?:all versions of )?([A-Za-z0-9_.\-]+?)(?:[=<>!~].*?)? ha(?:s|ve) no usable wheels"
    r"|Wheels are required for `([A-Za-z0-9_.\-]+)`"
)


def _missing_wheel(output: str, platform: str, python: str) -> OperationError | None:
    if "no usable wheels" not in output and "Wheels are required" not in output:
        return None
    match = _NO_WHEEL.search(output)
    name = next((group for group in match.groups() if group), None) if match else None
    package = f"package '{name}'" if name else "a package"
    return OperationError(
        f"{package} has no binary wheel for {platform}, Python {python}",
        hint="pin a version that publishes a wheel for this platform, pick the other "
        "architecture (targets.lambda.arch / targets.cloudrun.platforms), or replace the "
        "package; source builds are not used because they would not match the target",
        detail=output.strip()[-2000:],
    )


def _run(
    argv: list[str],
    *,
    what: str,
    cwd: Path | None = None,
    on_failure: Callable[[str], OperationError | None] | None = None,
) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise OperationError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from None
    if done.returncode != 0:
        output = (done.stderr or "") + (done.stdout or "")
        specific = on_failure(output) if on_failure else None
        raise specific or OperationError(f"{what} failed", detail=output.strip()[-2000:])
    return done.stdout
