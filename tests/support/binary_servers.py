"""Build the example MCP servers that are Linux executables (`runtime = "binary"`), once per
machine, and hand tests either the built executable or a project copy that builds in seconds.

The examples (`examples/<name>/`, each with its `mcp-deploy.toml`):
- `toolbox-rmcp`: Rust on the official `rmcp` SDK (`target/release/toolbox-rmcp`);
- `toolbox-pmcp`: Rust on the PMCP SDK (`target/release/toolbox-pmcp`);
- `toolbox-go`: Go on the official go-sdk (`bin/toolbox-go`, static).

`build_example(name)` mirrors the example's sources (everything but `target/`, `bin/` and
`.mcp-deploy/`) into `cache_root()/test-binaries/<name>/`, runs the example's own
`[server].build` command there and returns the executable. Cargo keeps its `target/` in that
directory and Go its default GOCACHE, so after the first build a call only checks freshness
(0.1-0.3 s). The mirror rewrites only files whose bytes changed (their mtime becomes now), so
cargo's mtime-based freshness sees exactly the edited files. A per-example file lock serializes
concurrent callers (pytest-xdist workers, parallel sessions); `test-binaries/<name>.build.log`
holds the last build's output.

`example_copy(name, destination)` builds (as above), copies the example's sources to
`destination` (keeping their mtimes) and symlinks its `target/` (cargo) or `bin/` (Go) to the
cached build, so the spec's build command, when mcp-deploy runs it in the copy, finds
everything fresh: measured ~0.1 s for cargo (its fingerprints do not depend on the project's
path) and ~0.3 s for go (build cache hits, `-trimpath`).

First builds measured on this machine (2 cores, crates and modules already downloaded; add the
downloads on a machine that never built them: 134 and 213 crates, a dozen Go modules):
- toolbox-rmcp: 65-72 s;
- toolbox-pmcp: 95-110 s;
- toolbox-go: ~15-20 s with an empty GOCACHE; 0.3 s in a new directory once GOCACHE holds it.
Builds after that, nothing changed: 0.1-0.3 s (cargo, go).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

from orchestrator.paths import cache_root
from tests.support.work_copies import locked, mirror, sources

__all__ = [
    "EXAMPLES",
    "BuildError",
    "build_env",
    "build_example",
    "example_copy",
    "example_dir",
]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = ("toolbox-rmcp", "toolbox-pmcp", "toolbox-go")
# Build outputs and mcp-deploy's own folder: never part of the mirrored sources.
_NOT_SOURCES = frozenset({"target", "bin", ".mcp-deploy"})
_BUILD_TIMEOUT = 30 * 60


class BuildError(RuntimeError):
    """An example's build command failed; the message ends with the tail of its output."""


def example_dir(name: str) -> Path:
    """`examples/<name>` of this repository; ValueError for a name not in `EXAMPLES`."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown binary example {name!r}; known: {', '.join(EXAMPLES)}")
    return REPO / "examples" / name


def _server_section(name: str) -> tuple[list[str], str]:
    """The example's `[server].build` command and `[server].binary` path, from its spec."""
    spec = tomllib.loads((example_dir(name) / "mcp-deploy.toml").read_text())
    server = spec["server"]
    return list(server["build"]), str(server["binary"])


def _work_root() -> Path:
    return cache_root() / "test-binaries"


def build_env() -> dict[str, str]:
    """The environment the examples' build commands run in: this process's, with cargo's
    target directory the project's own `target/` (CARGO_TARGET_DIR unset), Go forbidden to
    change go.mod/go.sum (GOFLAGS=-mod=readonly), and cargo and go on PATH."""
    env = dict(os.environ)
    env.pop("CARGO_TARGET_DIR", None)
    env["CARGO_TERM_COLOR"] = "never"
    env["GOFLAGS"] = "-mod=readonly"
    extra = [str(Path.home() / ".cargo" / "bin"), "/usr/local/go/bin"]
    env["PATH"] = os.pathsep.join([env.get("PATH", ""), *extra])
    return env


def _run_build(name: str, work: Path, command: list[str]) -> float:
    """Run `command` in `work`, output to `<name>.build.log`; seconds taken. BuildError on a
    non-zero exit, with the log's tail."""
    log = _work_root() / f"{name}.build.log"
    started = time.monotonic()
    with log.open("w") as sink:
        completed = subprocess.run(
            command,
            cwd=work,
            env=build_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=_BUILD_TIMEOUT,
            check=False,
        )
    seconds = time.monotonic() - started
    if completed.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise BuildError(
            f"{' '.join(command)} failed for {name} (exit {completed.returncode}, "
            f"{seconds:.0f} s; log {log}):\n{tail}"
        )
    return seconds


def build_example(name: str) -> Path:
    """Build example `name` in its cached work directory and return its executable.

    Runs the spec's `[server].build` command every time (cargo and go decide what is stale);
    raises BuildError when it fails or does not produce the executable, ValueError for an
    unknown name. Safe to call from several processes at once."""
    source = example_dir(name)
    command, binary = _server_section(name)
    work = _work_root() / name
    with locked(_work_root(), name):
        work.mkdir(parents=True, exist_ok=True)
        mirror(source, work, _NOT_SOURCES)
        _run_build(name, work, command)
        executable = work / binary
        if not executable.is_file() or not os.access(executable, os.X_OK):
            raise BuildError(f"{' '.join(command)} did not produce {binary} for {name}")
        return executable


def example_copy(name: str, destination: Path) -> Path:
    """Copy example `name` into `destination` (created; must not hold a file of the example)
    with its build-output folder (`target` or `bin`) a symlink to the cached build, built
    first; returns `destination`, the project folder with the example's mcp-deploy.toml.

    mcp-deploy's build step then runs the spec's build command against the cached outputs
    (see the module docstring for what that costs)."""
    build_example(name)
    _command, binary = _server_section(name)
    outputs = Path(binary).parts[0]
    source = example_dir(name)
    destination.mkdir(parents=True, exist_ok=True)
    for relative in sorted(sources(source, _NOT_SOURCES)):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relative, target)
    (destination / outputs).symlink_to(_work_root() / name / outputs, target_is_directory=True)
    return destination
