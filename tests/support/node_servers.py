"""Node.js MCP server projects for tests: installed once per machine with `npm ci`, handed out
as a cached project directory or as a project copy whose `node_modules` is the cached one.

The projects (each with its `package.json` and `package-lock.json`, the servers with their
`mcp-deploy.toml`):
- `toolbox-ts` (`examples/toolbox-ts`): the toolbox tools on the official TypeScript SDK, a
  module whose default export is a web-standard fetch handler (`entry = "src/server.ts"`);
- `server-everything` (`tests/fixtures/npm/server-everything`): the published
  `@modelcontextprotocol/server-everything`, unmodified, serving streamable HTTP on $PORT;
- `server-memory` (`tests/fixtures/npm/server-memory`): the published
  `@modelcontextprotocol/server-memory`, unmodified, a stdio server;
- `oidc-provider` (`tests/fixtures/npm/oidc-provider`): panva's `oidc-provider`, a real OpenID
  provider the OAuth tests run on loopback (`tests.support.oidc`; no mcp-deploy.toml).

`npm_project(name)` mirrors the project's sources (everything but `node_modules/` and
`.mcp-deploy/`) into `cache_root()/test-node/<name>/` and runs `npm ci` there when its lock
file changed since the last install (the lock's SHA-256 is kept in `.npm-ci.sha256` next to
`node_modules/`, written only after a successful install). A per-project file lock serializes
concurrent callers (pytest-xdist workers, parallel sessions); `test-node/<name>.npm.log` holds
the last install's output. `node_copy(name, destination)` copies the sources and symlinks
`node_modules` to the cached install, for tests that deploy the project with mcp-deploy.

`esbuild()` installs esbuild (`ESBUILD_VERSION`, from npm) the same way, into
`cache_root()/test-node/esbuild-<version>/`, and returns its executable: the tests bundle the
TypeScript example with it to run it under plain Node (Node 20 cannot strip types itself).

Measured here (npm cache warm, 2 cores): `npm ci` 2-4 s per project; afterwards a call only
compares files and a hash (milliseconds).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from orchestrator.paths import cache_root
from tests.support.work_copies import locked, mirror, sources

__all__ = [
    "ESBUILD_VERSION",
    "PROJECTS",
    "NpmError",
    "esbuild",
    "node_copy",
    "npm_env",
    "npm_project",
    "project_dir",
]

REPO = Path(__file__).resolve().parents[2]
PROJECTS: dict[str, Path] = {
    "toolbox-ts": REPO / "examples" / "toolbox-ts",
    "server-everything": REPO / "tests" / "fixtures" / "npm" / "server-everything",
    "server-memory": REPO / "tests" / "fixtures" / "npm" / "server-memory",
    "oidc-provider": REPO / "tests" / "fixtures" / "npm" / "oidc-provider",
}
ESBUILD_VERSION = "0.28.2"
# Installed dependencies and mcp-deploy's own folder: never part of the mirrored sources.
_NOT_SOURCES = frozenset({"node_modules", ".mcp-deploy"})
_STAMP = ".npm-ci.sha256"
_NPM_TIMEOUT = 10 * 60


class NpmError(RuntimeError):
    """`npm ci` (or the esbuild install) failed; the message ends with the tail of its output."""


def project_dir(name: str) -> Path:
    """The project's directory in this repository; ValueError for a name not in `PROJECTS`."""
    if name not in PROJECTS:
        raise ValueError(f"unknown Node project {name!r}; known: {', '.join(PROJECTS)}")
    return PROJECTS[name]


def _work_root() -> Path:
    return cache_root() / "test-node"


def npm_env() -> dict[str, str]:
    """The environment npm runs in: this process's, without update checks, audit or funding
    messages, and with lifecycle scripts off (none of the projects' packages needs one)."""
    env = dict(os.environ)
    env.update(
        {
            "npm_config_update_notifier": "false",
            "npm_config_audit": "false",
            "npm_config_fund": "false",
            "npm_config_ignore_scripts": "true",
            "npm_config_progress": "false",
        }
    )
    return env


def _run_npm(label: str, work: Path, command: list[str]) -> None:
    """Run an npm `command` in `work`, output to `<label>.npm.log`; NpmError on failure."""
    log = _work_root() / f"{label}.npm.log"
    started = time.monotonic()
    with log.open("w") as sink:
        completed = subprocess.run(
            command,
            cwd=work,
            env=npm_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=_NPM_TIMEOUT,
            check=False,
        )
    if completed.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise NpmError(
            f"{' '.join(command)} failed for {label} (exit {completed.returncode}, "
            f"{time.monotonic() - started:.0f} s; log {log}):\n{tail}"
        )


def _install(label: str, work: Path) -> None:
    """`npm ci` in `work` unless its node_modules was installed from this very lock file."""
    lock_sha = hashlib.sha256((work / "package-lock.json").read_bytes()).hexdigest()
    stamp = work / _STAMP
    if (work / "node_modules").is_dir() and stamp.is_file() and stamp.read_text() == lock_sha:
        return
    stamp.unlink(missing_ok=True)
    _run_npm(label, work, ["npm", "ci"])  # npm ci removes node_modules/ first
    stamp.write_text(lock_sha)


def npm_project(name: str) -> Path:
    """The project `name` mirrored into `cache_root()/test-node/<name>/` with its dependencies
    installed by `npm ci` (again only when its package-lock.json changed); returns that
    directory. NpmError when npm fails, ValueError for an unknown name. Safe to call from
    several processes at once."""
    source = project_dir(name)
    work = _work_root() / name
    with locked(_work_root(), name):
        work.mkdir(parents=True, exist_ok=True)
        mirror(source, work, _NOT_SOURCES, keep={Path(_STAMP)})
        _install(name, work)
        return work


def node_copy(name: str, destination: Path) -> Path:
    """Copy project `name`'s sources into `destination` (created; must not hold a file of the
    project) with `node_modules` a symlink to the cached install (installed first); returns
    `destination`, the project folder with its mcp-deploy.toml."""
    work = npm_project(name)
    source = project_dir(name)
    destination.mkdir(parents=True, exist_ok=True)
    for relative in sorted(sources(source, _NOT_SOURCES)):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relative, target)
    (destination / "node_modules").symlink_to(work / "node_modules", target_is_directory=True)
    return destination


def esbuild() -> Path:
    """The esbuild executable, version `ESBUILD_VERSION`, installed from npm once per machine
    into `cache_root()/test-node/esbuild-<version>/` (a project pinning it exactly)."""
    label = f"esbuild-{ESBUILD_VERSION}"
    work = _work_root() / label
    manifest = {
        "name": "mcp-deploy-test-esbuild",
        "private": True,
        "dependencies": {"esbuild": ESBUILD_VERSION},
    }
    with locked(_work_root(), label):
        work.mkdir(parents=True, exist_ok=True)
        executable = work / "node_modules" / ".bin" / "esbuild"
        stamp = work / _STAMP
        if not (executable.exists() and stamp.is_file() and stamp.read_text() == ESBUILD_VERSION):
            stamp.unlink(missing_ok=True)
            (work / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
            _run_npm(label, work, ["npm", "install", "--no-save"])
            stamp.write_text(ESBUILD_VERSION)
        return executable
