"""The part of an artifact a Node server (`server.runtime = "node"`) brings. Shared by the
Lambda, Cloud Run and Workers packagers.

Two shapes:
- `NodeEntry`: `server.entry` is a module whose default export is `{ fetch }`. esbuild bundles
  it, with the dependencies `npm ci` installs from the project's lock file and one of
  mcp-deploy's shims (`targets/shim/node/`: `lambda.mjs`, `serve.mjs`, `worker.mjs`) as the
  entry point, into ONE ES module; the shim reads the runtime config (`MCP_DEPLOY_CONFIG`,
  inlined: MCP path, health path, auth, secret names; no environment config, no secret
  value) and applies the gate (Origin, auth; in mode oauth a JWT verifier on `jose`, bundled
  only then) before the server's `fetch`.
- `NodeCommand`: `server.command` starts a program that listens on $PORT (transport http) or
  speaks stdio. It ships as its selected sources plus the production dependencies
  (`npm ci --omit=dev`) under `node_modules/`, behind mcp-deploy's launcher
  (`orchestrator.build.launcher`), which starts the command with the runtime's `node` on PATH
  and proxies (http) or bridges (stdio) to it, as for binary servers.

Both hash what they are built from into the artifact's inputs before anything is built, so an
unchanged server is found in the store without running npm or esbuild.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from orchestrator.build.archive import Entry
from orchestrator.build.auth_config import runtime_auth
from orchestrator.build.binary import launcher_entries
from orchestrator.build.context import BuildContext, InputsHash
from orchestrator.build.elf import inspect_executable
from orchestrator.build.esbuild import ESBUILD_VERSION, bundle, shim_packages
from orchestrator.build.launcher import launcher_binary
from orchestrator.build.npm import node_toolchain, npm_dependencies
from orchestrator.build.sources import select_sources
from orchestrator.errors import input_error
from orchestrator.secret_values import secret_files

NODE_SHIMS = Path(__file__).resolve().parent.parent.parent / "targets" / "shim" / "node"
LOCK_FILES = ("package.json", "package-lock.json")
Shim = Literal["lambda", "serve", "worker"]


def shim_config(context: BuildContext) -> dict[str, Any]:
    """What the Node shims read (`MCP_DEPLOY_CONFIG`). No environment config, no secret."""
    spec = context.loaded.spec
    return {
        "path": spec.server.path,
        "health_path": spec.server.health_path,
        "auth": runtime_auth(spec),
        "secrets": sorted(spec.secrets),
    }


def _hash_project(context: BuildContext, inputs: InputsHash) -> dict[str, Path]:
    """Add the selected sources (never node_modules), the npm lock files and the Node major
    to `inputs`; return the sources."""
    spec = context.loaded.spec
    keep_out = secret_files(spec, context.loaded.root)
    sources = select_sources(context.source_dir, spec.server, keep_out=keep_out)
    sources = {rel: path for rel, path in sources.items() if not _in_node_modules(rel)}
    inputs.add("runtime", f"node{spec.server.node}")
    for name in LOCK_FILES:
        lock = context.source_dir / name
        if lock.is_file():
            inputs.add_file(f"npm:{name}", lock)
    for relative, path in sources.items():
        inputs.add_file(f"source:{relative}", path)
    return sources


def _in_node_modules(relative: str) -> bool:
    return relative.startswith("node_modules/") or "/node_modules/" in relative


def _dependencies(context: BuildContext, *, production: bool) -> Path | None:
    """The directory holding the project's `node_modules` as its lock file pins them (None
    when the project has no package.json: a server without dependencies)."""
    if not (context.source_dir / "package.json").is_file():
        return None
    return npm_dependencies(context.source_dir, production=production, progress=context.progress)


class NodeEntry:
    """A fetch-handler server bundled with one shim; hashed into `inputs` on creation."""

    def __init__(self, context: BuildContext, shim: Shim, inputs: InputsHash) -> None:
        spec = context.loaded.spec
        assert spec.server.entry is not None, "checked with the spec: a node entry or command"
        self.context = context
        self.shim = NODE_SHIMS / f"{shim}.mjs"
        self.platform: Literal["node", "workerd"] = "workerd" if shim == "worker" else "node"
        self.entry = context.source_dir / spec.server.entry
        if not self.entry.is_file():
            raise input_error("server.entry", f"{self.entry} does not exist")
        self.config = shim_config(context)
        _hash_project(context, inputs)
        inputs.add("esbuild", ESBUILD_VERSION)
        for package, version in sorted(shim_packages(self.config).items()):
            inputs.add(f"shim-package:{package}", version)
        inputs.add("shim-config", json.dumps(self.config, sort_keys=True))
        for path in sorted(NODE_SHIMS.glob("*.mjs")):
            if not path.name.endswith(".test.mjs"):
                inputs.add_file(f"shim:{path.name}", path)

    def bundle_to(self, out: Path) -> Path:
        """Install the dependencies (cached) and bundle into `out` (one .mjs file)."""
        node_modules = _dependencies(self.context, production=False)
        return bundle(
            shim=self.shim,
            app_entry=self.entry,
            node_modules=None if node_modules is None else node_modules / "node_modules",
            platform=self.platform,
            node_major=self.context.loaded.spec.server.node,
            runtime_config=self.config,
            out=out,
            progress=self.context.progress,
        )


class NodeCommand:
    """A program server (`server.command`) with its production dependencies behind the
    launcher for CPU `arch`; hashed into `inputs` on creation."""

    def __init__(self, context: BuildContext, arch: str, inputs: InputsHash) -> None:
        spec = context.loaded.spec
        assert spec.server.command is not None, "checked with the spec: a node entry or command"
        self.context = context
        self.arch = arch
        self.sources = _hash_project(context, inputs)
        self.launcher = launcher_binary(arch, context.progress)
        config: dict[str, Any] = {
            "runtime": "node",
            "transport": spec.server.transport,
            "command": spec.server.command,
            **shim_config(context),
        }
        self.config = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()
        inputs.add_file("launcher", self.launcher)
        inputs.add("runtime-config", self.config)

    def entries(self, launcher_name: str, prefix: str = "") -> list[Entry]:
        """Archive entries (paths under `prefix`): the launcher, the runtime config, the
        sources and `node_modules/` (installed now, from the cache when it has them; links
        such as `node_modules/.bin/*` are left out: commands name their script)."""
        found = launcher_entries(self.launcher, launcher_name, self.config, self.sources, prefix)
        installed = _dependencies(self.context, production=True)
        if installed is not None:
            modules = installed / "node_modules"
            files = [p for p in sorted(modules.rglob("*")) if p.is_file() and not p.is_symlink()]
            check_native_addons(modules, files, self.arch, self.context.loaded.spec.server.node)
            for path in files:
                relative = "node_modules/" + path.relative_to(modules).as_posix()
                found.append(Entry(prefix + relative, source=path, executable=_executable(path)))
        return found


def check_native_addons(modules: Path, files: list[Path], arch: str, node_major: str) -> None:
    """Refuse a native addon (`*.node`) that cannot load where the artifact runs: built for
    another CPU than `arch`, or (npm built it with this machine's node) for another Node.js
    major than `server.node`. `InputError` at `server.command` naming the file."""
    addons = [path for path in files if path.suffix == ".node"]
    if not addons:
        return
    for path in addons:
        relative = f"node_modules/{path.relative_to(modules).as_posix()}"
        found = inspect_executable(path, "server.command").arch
        if found != arch:
            raise input_error(
                "server.command",
                f"{relative} is a native addon built for {found}, and the artifact is for {arch}",
                f"build on an {arch} machine, or use a pure-JavaScript package instead",
            )
    machine = node_toolchain().major
    if machine != node_major:
        raise input_error(
            "server.command",
            f"{relative} is a native addon, built by npm with this machine's Node.js {machine}; "
            f"server.node is {node_major}, whose ABI differs",
            f'build with Node.js {node_major} on PATH, or set server.node = "{machine}"',
        )


def _executable(path: Path) -> bool:
    return path.stat().st_mode & 0o111 != 0
