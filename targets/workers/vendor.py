"""Vendor a server's dependencies for Python Workers: pure Python only, cached.

Python Workers run Pyodide (CPython compiled to WebAssembly): a Linux wheel with compiled
code is of no use there. Dependencies are resolved and installed with uv for the runtime's
own platform (`wasm32-pyodide2024`/`2025`, so environment markers are evaluated as on the
runtime: `sys_platform == "emscripten"`):

1. *Resolve* with each package the runtime provides with compiled code (`runtime_packages`)
   held at the runtime's version and offered as a metadata-only stand-in wheel (its name,
   version and dependencies), so the resolver accepts it without a WebAssembly wheel and
   picks versions of everything else that work with it.
2. *Install* every resolved package except those, without dependencies: uv picks each one's
   pure-Python wheel. A compiled package the runtime does not provide has no usable wheel
   and fails the resolution, by name.

The result is cached under the key (requirements, runtime Python and Pyodide release, the
provided-package table, uv version), like the Lambda vendor directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from orchestrator.build.vendor import (
    DEAD_WEIGHT_DIRS,
    DEAD_WEIGHT_SUFFIXES,
    uv_binary,
)
from orchestrator.errors import OperationError
from orchestrator.paths import cache_root
from targets.workers.runtime_packages import WorkersPython, normalise

CACHE_FORMAT = "2"
# Only to explain a conflict with the runtime's versions: a platform where every package has
# wheels, to see which versions the requirements would choose without the runtime's.
EXPLAIN_PLATFORM = "x86_64-manylinux2014"
# Installer records, never read at run time: direct_url.json holds local paths,
# uv_cache.json a timestamp, RECORD their hashes (and no longer matches the stripped tree).
DROPPED_METADATA = frozenset(
    {"direct_url.json", "INSTALLER", "RECORD", "REQUESTED", "uv_cache.json"}
)

# How uv names a package it found no usable wheel of: "Because x==1.0 has no usable wheels",
# "all versions of x have no usable wheels", "x==1.0 has no wheels with a matching platform
# tag", "Wheels are required for `x`". (The last also names packages that only lead to one.)
_NO_WHEEL = re.compile(
    r"(?:Because (?:all versions of )?)?([A-Za-z0-9][A-Za-z0-9_.\-]*?)(?:[=<>!~]=?\S*)? "
    r"ha(?:s|ve) no (?:usable )?wheels|Wheels are required for `([^`]+)`"
)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)(?:\[[^\]]*\])?\s*(?:==\s*([^\s;]+)|@\s*\S+)")


@dataclass(frozen=True)
class Vendored:
    """Dependencies ready for `python_modules/`.

    `site` is a shared cache directory: read it, never modify it. `vendored` maps each
    installed distribution (normalised name) to its version; `provided` maps each resolved
    package that the runtime provides instead to the version it provides.
    """

    site: Path
    key: str
    vendored: dict[str, str]
    provided: dict[str, str]


def vendor_pure(requirements: tuple[str, ...], *, python: WorkersPython, origin: str) -> Vendored:
    """Resolve and install `requirements` for the Workers runtime `python` (module docstring).

    Raises `OperationError` naming the package when the requirements cannot be satisfied by
    pure-Python wheels plus the packages the runtime provides.
    """
    uv = uv_binary()
    uv_version = _uv(uv, ["--version"], what="running uv").strip()
    table = json.dumps(sorted(python.compiled.items()), separators=(",", ":"))
    material = "\n".join(
        [
            CACHE_FORMAT,
            uv_version,
            python.version,
            python.pyodide,
            python.uv_platform,
            table,
            *sorted(requirements),
        ]
    )
    key = hashlib.sha256(material.encode()).hexdigest()[:32]
    destination = cache_root() / "workers-vendor" / key
    if (destination / "resolution.json").is_file():
        return _load(destination, key)
    destination.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=destination.parent))
    try:
        site = work / "site"
        site.mkdir()
        provided: dict[str, str] = {}
        if requirements:
            pins = _resolve(uv, requirements, work, python=python, origin=origin)
            to_install = []
            for line in pins:
                name, version = _pin(line)
                if name in python.compiled:
                    provided[name] = version or python.compiled[name].version
                else:
                    to_install.append(line)
            if to_install:
                _install(uv, tuple(to_install), work, site, python=python, origin=origin)
        vendored = _check_pure(site)
        _strip(site)
        (work / "resolution.json").write_text(
            json.dumps({"vendored": vendored, "provided": provided}, indent=2, sort_keys=True),
            encoding="utf-8",
        )
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(work, destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _load(destination, key)


def _load(directory: Path, key: str) -> Vendored:
    data = json.loads((directory / "resolution.json").read_text(encoding="utf-8"))
    return Vendored(directory / "site", key, dict(data["vendored"]), dict(data["provided"]))


def _resolve(
    uv: str, requirements: tuple[str, ...], work: Path, *, python: WorkersPython, origin: str
) -> list[str]:
    """Pinned requirement lines for the runtime, provided packages at the runtime's versions."""
    requirement_file = work / "requirements.in"
    requirement_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    constraints = work / "runtime-constraints.txt"
    constraints.write_text(
        "".join(f"{name}=={p.version}\n" for name, p in sorted(python.compiled.items())),
        encoding="utf-8",
    )
    stand_ins = _stand_in_wheels(work / "runtime-provided", python)
    done = _try_uv(
        uv,
        [
            "pip", "compile", "--quiet", "--no-progress", "--no-header", "--no-annotate",
            "--no-python-downloads", "--python-platform", python.uv_platform,
            "--python-version", python.version, "--only-binary", ":all:",
            "--find-links", str(stand_ins), "--constraint", str(constraints),
            str(requirement_file),
        ],
    )  # fmt: skip
    if done.returncode == 0:
        return _requirement_lines(done.stdout)
    output = (done.stderr or "") + (done.stdout or "")
    raise _resolution_error(uv, requirement_file, output, python=python, origin=origin)


def _resolution_error(
    uv: str, requirement_file: Path, output: str, *, python: WorkersPython, origin: str
) -> OperationError:
    """Why the requirements failed to resolve for the runtime: a runtime-provided package
    they need in another version, else a compiled package the runtime does not provide,
    else whatever uv said."""
    free = _try_uv(
        uv,
        [
            "pip", "compile", "--quiet", "--no-progress", "--no-header", "--no-annotate",
            "--no-python-downloads", "--python-platform", EXPLAIN_PLATFORM,
            "--python-version", python.version, "--only-binary", ":all:",
            str(requirement_file),
        ],
    )  # fmt: skip
    resolved = dict(_pin(line) for line in _requirement_lines(free.stdout))
    provided = python.compiled
    mismatched = [
        name
        for name, version in sorted(resolved.items())
        if name in provided and version != provided[name].version
    ]
    # The packages the resolver's explanation names at the runtime's version are the ones
    # that conflict; the others would simply have resolved to the runtime's version.
    blamed = [n for n in mismatched if f"{n}=={provided[n].version}" in output]
    runtime = f"Python {python.version}, Pyodide {python.pyodide}"
    if free.returncode == 0 and blamed:
        what = "; ".join(
            f"{name}: the runtime provides {provided[name].version}, and without that limit "
            f"they resolve to {resolved[name]}"
            for name in blamed
        )
        return OperationError(
            f"the dependencies of {origin} cannot use the compiled packages the Python "
            f"Workers runtime provides ({runtime}): {what}",
            hint="Python Workers cannot load compiled code from PyPI's Linux wheels; pin "
            "versions that work with the runtime's, or deploy this server to Lambda or "
            "Cloud Run",
            detail=_tail(output),
        )
    unusable = [name for name in _no_wheels(output) if name not in provided]
    if free.returncode == 0 and unusable:
        return OperationError(
            f"package '{unusable[0]}' (a dependency of {origin}) has no pure-Python wheel, and "
            f"the Python Workers runtime does not provide it ({runtime})",
            hint="Python Workers cannot load compiled code from PyPI's Linux wheels: replace "
            "the package, or deploy this server to Lambda or Cloud Run",
            detail=_tail(output),
        )
    return OperationError(
        f"resolving the dependencies of {origin} for Python Workers ({runtime}) failed",
        detail=_tail(output),
    )


def _stand_in_wheels(directory: Path, python: WorkersPython) -> Path:
    """A metadata-only wheel for each runtime-provided package (resolution only: these are
    never installed)."""
    directory.mkdir()
    wheel = "Wheel-Version: 1.0\nGenerator: mcp-deploy\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    for name, provided in sorted(python.compiled.items()):
        stem = f"{name.replace('-', '_')}-{provided.version}"
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {provided.version}\n" + "".join(
            f"Requires-Dist: {dependency}\n" for dependency in provided.depends
        )
        with zipfile.ZipFile(directory / f"{stem}-py3-none-any.whl", "w") as archive:
            archive.writestr(f"{stem}.dist-info/METADATA", metadata)
            archive.writestr(f"{stem}.dist-info/WHEEL", wheel)
            archive.writestr(f"{stem}.dist-info/RECORD", "")
    return directory


def _install(
    uv: str,
    pins: tuple[str, ...],
    work: Path,
    site: Path,
    *,
    python: WorkersPython,
    origin: str,
) -> None:
    pin_file = work / "vendor.txt"
    pin_file.write_text("\n".join(pins) + "\n", encoding="utf-8")
    done = _try_uv(
        uv,
        [
            "pip", "install", "--quiet", "--no-progress", "--link-mode", "copy",
            "--target", str(site), "--no-deps",
            "--no-python-downloads", "--python-platform", python.uv_platform,
            "--python-version", python.version,
            "--only-binary", ":all:", "--no-compile", "-r", str(pin_file),
        ],
    )  # fmt: skip
    if done.returncode == 0:
        return
    output = (done.stderr or "") + (done.stdout or "")
    raise OperationError(
        f"installing the dependencies of {origin} for Python Workers failed",
        detail=_tail(output),
    )


def _check_pure(site: Path) -> dict[str, str]:
    """name -> version of every installed distribution; `OperationError` for a compiled one."""
    found: dict[str, str] = {}
    for info in sorted(site.glob("*.dist-info")):
        metadata = HeaderParser().parsestr((info / "METADATA").read_text(encoding="utf-8"))
        name, version = normalise(metadata["Name"]), metadata["Version"]
        wheel = HeaderParser().parsestr((info / "WHEEL").read_text(encoding="utf-8"))
        tags = wheel.get_all("Tag") or []
        if not tags or any(not tag.endswith("-none-any") for tag in tags):
            raise OperationError(
                f"package '{name}' {version} installed a wheel with compiled code "
                f"({', '.join(tags) or 'no tag'}); mcp-deploy vendors pure-Python packages only",
                hint="pin a version of it that publishes a pure-Python wheel, or replace it",
            )
        found[name] = version
    return found


def _strip(site: Path) -> None:
    (site / ".lock").unlink(missing_ok=True)  # uv's lock file for the target directory
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and path.name in DEAD_WEIGHT_DIRS:
            shutil.rmtree(path)
        elif path.is_file() and (
            path.name.endswith(DEAD_WEIGHT_SUFFIXES)
            or (path.parent.name.endswith(".dist-info") and path.name in DROPPED_METADATA)
        ):
            path.unlink()


def _requirement_lines(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "-"))
    ]


def _pin(line: str) -> tuple[str, str | None]:
    """(normalised name, pinned version or None for a direct reference) of a pinned line."""
    match = _PIN.match(line)
    if match is None:
        raise OperationError(f"unexpected line from the resolver: {line!r}")
    return normalise(match.group(1)), match.group(2)


def _tail(output: str, lines: int = 12) -> str:
    """The last lines of a tool's output (uv ends with its conclusion)."""
    return "\n".join(output.strip().splitlines()[-lines:])


def _no_wheels(output: str) -> list[str]:
    """Normalised names of the packages uv says have no usable wheels, in order."""
    names = []
    for match in _NO_WHEEL.finditer(output):
        name = normalise(match.group(1) or match.group(2))
        if name not in names:
            names.append(name)
    return names


def _try_uv(uv: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([uv, *argv], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise OperationError(f"cannot run {uv}: {exc.strerror}") from None


def _uv(uv: str, argv: list[str], *, what: str) -> str:
    done = _try_uv(uv, argv)
    if done.returncode != 0:
        output = (done.stderr or "") + (done.stdout or "")
        raise OperationError(f"{what} failed", detail=_tail(output))
    return done.stdout
