"""npm for `server.runtime = "node"`: pinned build tools and a project's pinned dependencies.

- `npm_tool(package, version)`: an exact version of an npm package (esbuild, ...) installed
  once per machine into `cache_root()/npm-tools/<package>@<version>` (a scoped name's `/`
  becomes `+`) and returned as that prefix (the package is in `<prefix>/node_modules`). The
  tool's own install scripts run: the prefix's package.json allows them
  (`allowScripts: {"<package>@<version>": true}`; npm >= 11 blocks the install scripts of
  dependencies that are not allowed, and refuses `--allow-scripts` in a project).
- `npm_dependencies(project_dir, production=...)`: `npm ci` of the project's `package.json`
  and its lock (`package-lock.json`, or `npm-shrinkwrap.json`) into
  `cache_root()/npm-deps/<key>`, returned as the directory holding `node_modules`. The key
  is the sha256 of both files' bytes, the production flag (`--omit=dev`) and the local Node
  major version; a directory present under the key is reused as is. The project's own
  `.npmrc` (registry, auth, allowScripts policy) is used for the install and not kept. The
  root package's lifecycle scripts (prepare, postinstall, ...) do not run: they belong to the
  project's build and need its sources; its dependencies' install scripts do (as the
  project's `allowScripts` permits, npm >= 11).

Both build in a temporary sibling directory and rename it into place under an inter-process
lock (`flock` on `<key>.lock`), so a cached directory is always complete and concurrent
builds wait for each other. Errors: `InputError` at `server.runtime` when node or npm is
missing, at `server.source` when the project's files are missing, unreadable or out of sync;
`OperationError` (npm's output tail as detail) when npm fails otherwise.

Part of the build toolkit: imports only `orchestrator.paths`, `orchestrator.errors` and the
standard library.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError, Issue, OperationError, input_error
from orchestrator.paths import cache_root

CACHE_FORMAT = "1"
MINIMUM_NODE = 18
INSTALL_TIMEOUT = 1200  # seconds for one npm install / npm ci
OUTPUT_TAIL = 60  # lines of npm output shown when it fails
LOCK_FILES = ("package-lock.json", "npm-shrinkwrap.json")  # npm ci prefers the shrinkwrap
NODE_HINT = (
    "install Node.js 20 or later with npm (https://nodejs.org or your package manager) and "
    "put `node` and `npm` on PATH; mcp-deploy bundles Node servers with them"
)
LOCK_HINT = (
    "run `npm install` to create package-lock.json; mcp-deploy installs exactly what it pins"
)
_PACKAGE = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class NodeToolchain:
    """The local `node` and `npm` executables and `node --version` (e.g. `v20.20.2`)."""

    node: str
    npm: str
    version: str

    @property
    def major(self) -> str:
        """The major version, e.g. "20"."""
        return self.version.lstrip("v").split(".", 1)[0]


def node_toolchain() -> NodeToolchain:
    """node and npm from PATH; `InputError` at `server.runtime` when either is missing or
    node is older than MINIMUM_NODE."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        raise input_error(
            "server.runtime",
            f'runtime "node" needs {missing} on PATH, and none was found',
            NODE_HINT,
        )
    try:
        done = subprocess.run(
            [node, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise input_error("server.runtime", f"cannot run {node}: {exc}", NODE_HINT) from None
    version = done.stdout.strip()
    found = re.fullmatch(r"v(\d+)\.\d+\.\d+\S*", version)
    if done.returncode != 0 or not found:
        raise input_error("server.runtime", f"{node} --version failed: {version!r}", NODE_HINT)
    if int(found[1]) < MINIMUM_NODE:
        raise input_error(
            "server.runtime",
            f'runtime "node" needs Node.js {MINIMUM_NODE} or later, and {node} is {version}',
            NODE_HINT,
        )
    return NodeToolchain(node=node, npm=npm, version=version)


def npm_tool_dir(package: str, version: str) -> Path:
    """Where `package@version` is (or will be) installed; ValueError for a name or version
    that is not an npm package name and an exact version."""
    if not _PACKAGE.match(package) or not _VERSION.match(version):
        raise ValueError(f"not an npm package and exact version: {package}@{version}")
    return cache_root() / "npm-tools" / f"{package.replace('/', '+')}@{version}"


def npm_tool_command(npm: str, package: str, version: str, prefix: Path) -> list[str]:
    """The npm command installing `package@version` under `prefix`."""
    return [
        npm,
        "install",
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        "--ignore-scripts=false",
        "--save-exact",
        "--prefix",
        str(prefix),
        f"{package}@{version}",
    ]


def tool_manifest(package: str, version: str) -> str:
    """The package.json an npm tool's prefix starts with: private, and allowing the tool's
    own install scripts (`allowScripts`, npm >= 11; older npm runs them anyway)."""
    manifest = {"private": True, "allowScripts": {f"{package}@{version}": True}}
    return json.dumps(manifest, indent=2) + "\n"


def npm_tool(package: str, version: str, progress: Progress) -> Path:
    """The install prefix of `package@version` (see the module docstring), installed now when
    it is not cached (then `progress` says so)."""
    final = npm_tool_dir(package, version)
    if final.is_dir():
        return final
    tools = node_toolchain()
    with _locked(final.parent / f".{final.name}.lock"):
        if final.is_dir():  # another process installed it while we waited
            return final
        progress(f"installing {package} {version} with npm (once per machine)")
        work = Path(tempfile.mkdtemp(prefix=".install-", dir=final.parent))
        try:
            (work / "package.json").write_text(tool_manifest(package, version), encoding="utf-8")
            _run_npm(
                npm_tool_command(tools.npm, package, version, work),
                cwd=work,
                what=f"installing {package}@{version} with npm",
            )
            installed = work / "node_modules" / package / "package.json"
            try:
                got = json.loads(installed.read_text(encoding="utf-8")).get("version")
            except (OSError, ValueError):
                got = None
            if got != version:
                raise OperationError(
                    f"npm did not install {package}@{version} (found {got or 'nothing'})"
                )
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def dependencies_key(package_json: bytes, lock: bytes, *, production: bool, node_major: str) -> str:
    """The cache key of one `npm ci`: sha256 over the format, both files' bytes, the
    production flag and the Node major version (32 hex digits)."""
    digest = hashlib.sha256()
    for part in (
        CACHE_FORMAT.encode(),
        hashlib.sha256(package_json).hexdigest().encode(),
        hashlib.sha256(lock).hexdigest().encode(),
        b"production" if production else b"development",
        node_major.encode(),
    ):
        digest.update(part + b"\n")
    return digest.hexdigest()[:32]


def npm_ci_command(npm: str, *, production: bool) -> list[str]:
    """The `npm ci` command (run in the directory holding package.json and the lock)."""
    command = [npm, "ci", "--no-audit", "--no-fund", "--no-update-notifier"]
    return [*command, "--omit=dev"] if production else command


def project_files(project_dir: Path) -> tuple[Path, Path]:
    """(package.json, lock file) of the project; `InputError` at `server.source` when one is
    missing, unreadable, not JSON, or when the lock links packages from outside the registry
    (`file:` dependencies, workspaces), which a copy of the two files cannot install."""
    package_json = project_dir / "package.json"
    if not package_json.is_file():
        raise input_error(
            "server.source",
            f"{package_json} is missing: a Node server needs package.json",
            "run `npm init` and `npm install` in the server's source directory",
        )
    lock = next((project_dir / n for n in LOCK_FILES[::-1] if (project_dir / n).is_file()), None)
    if lock is None:
        raise input_error(
            "server.source", f"package-lock.json is missing in {project_dir}", LOCK_HINT
        )
    documents = [_json_file(package_json), _json_file(lock)]
    if "workspaces" in documents[0]:
        raise _issue(
            package_json,
            "npm workspaces are not supported (only one package)",
            "point server.source at a package with its own package.json and lock",
        )
    packages = documents[1].get("packages")
    linked = sorted(
        name
        for name, entry in (packages.items() if isinstance(packages, dict) else [])
        if isinstance(entry, dict) and entry.get("link")
    )
    if linked:
        raise _issue(
            lock,
            f"the lock links packages from outside the registry: {', '.join(linked[:5])}",
            "publish them to a registry (or pack them: `npm pack` and depend on the tarball "
            "by URL); mcp-deploy installs the lock in an empty directory",
        )
    return package_json, lock


def npm_dependencies(project_dir: Path, *, production: bool, progress: Progress) -> Path:
    """The directory holding the project's installed `node_modules` (see the module
    docstring), from the cache or installed now (then `progress` says so). It is shared:
    never modify it."""
    package_json, lock = project_files(project_dir)
    tools = node_toolchain()
    package_bytes, lock_bytes = package_json.read_bytes(), lock.read_bytes()
    key = dependencies_key(package_bytes, lock_bytes, production=production, node_major=tools.major)
    final = cache_root() / "npm-deps" / key
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final.parent / f".{key}.lock"):
        if final.is_dir():
            return final
        kind = "production " if production else ""
        progress(f"installing the {kind}npm dependencies of {project_dir} (npm ci)")
        work = Path(tempfile.mkdtemp(prefix=".ci-", dir=final.parent))
        try:
            manifest = json.loads(package_bytes)
            manifest.pop("scripts", None)  # the root package's own scripts need its sources
            (work / "package.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            (work / lock.name).write_bytes(lock_bytes)
            npmrc = project_dir / ".npmrc"
            if npmrc.is_file():
                shutil.copyfile(npmrc, work / ".npmrc")
            _run_npm(
                npm_ci_command(tools.npm, production=production),
                cwd=work,
                what=f"installing the npm dependencies of {project_dir}",
                on_failure=lambda output: _out_of_sync(output, package_json, lock),
            )
            (work / ".npmrc").unlink(missing_ok=True)
            (work / "node_modules").mkdir(exist_ok=True)  # npm makes none without packages
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def _json_file(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise _issue(path, f"cannot read {path.name}: {exc.strerror}", None) from None
    except ValueError as exc:
        raise _issue(path, f"{path.name} is not valid JSON: {exc}", LOCK_HINT) from None
    if not isinstance(document, dict):
        raise _issue(path, f"{path.name} is not a JSON object", LOCK_HINT)
    return document


def _issue(file: Path, message: str, hint: str | None) -> InputError:
    return InputError([Issue(where="server.source", message=message, hint=hint, file=file)])


def _out_of_sync(output: str, package_json: Path, lock: Path) -> InputError | None:
    if "npm ci" in output and "are in sync" in output:
        return _issue(
            lock,
            f"{lock.name} and {package_json.name} are out of sync",
            f"run `npm install` to update {lock.name}; mcp-deploy installs exactly what it pins",
        )
    return None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (released by the kernel if this process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _run_npm(
    argv: list[str],
    *,
    cwd: Path,
    what: str,
    on_failure: Callable[[str], InputError | None] | None = None,
) -> None:
    environment = {
        **os.environ,
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OperationError(f"{what} took longer than {INSTALL_TIMEOUT}s") from None
    except OSError as exc:
        raise OperationError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from None
    if done.returncode != 0:
        output = done.stdout or ""
        specific = on_failure(output) if on_failure else None
        if specific is not None:
            raise specific
        raise OperationError(
            f"{what} failed (npm exit status {done.returncode})",
            hint="npm's output is above; check the registry is reachable and the versions exist",
            detail="\n".join(output.strip().splitlines()[-OUTPUT_TAIL:]),
        )
