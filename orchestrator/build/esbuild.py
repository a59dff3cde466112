"""Bundle a Node server (a web-standard fetch handler) and a target's shim into one ES module.

`bundle()` runs esbuild ESBUILD_VERSION (installed once per machine by `npm_tool`) through its
JavaScript API with the local node. The entry point is the shim (`targets/shim/node/*.mjs`);
the shim's `import("mcp-deploy:app")` resolves to the server's module (`app_entry`), its
`import ... from "mcp-deploy:oauth"` to the token verifier `oauth.mjs` when the runtime
config's auth mode is "oauth" and to the empty `no-oauth.mjs` otherwise (so only oauth bundles
carry the verifier and its library, `jose` JOSE_VERSION, installed once per machine by
`npm_tool` like esbuild; see `shim_packages`), and the
global identifier `MCP_DEPLOY_CONFIG` is replaced by a string literal holding the runtime
config's JSON (`config_json`; the shims `JSON.parse` it: an object `define` would make esbuild
add an initialiser call to every module). Options:
ESM, bundled, not minified (readable stack traces), tree-shaken, no legal comments, UTF-8
output, no source map;
- `node`: platform node, target `node<major>`, a banner giving the module CommonJS's
  `require`, `__filename` and `__dirname` (bundled CommonJS code requiring node builtins or
  external packages needs them in an ES module); external: node builtins and the runtime's
  own packages (`DEFAULT_EXTERNAL`: `@aws-sdk/*` for the Lambda shim, whose runtime
  provides AWS SDK v3; nothing for the Cloud Run shim, whose image has no SDK);
- `workerd`: platform browser, target es2022, conditions workerd/worker/browser,
  `process.env.NODE_ENV` = "production"; node builtins (`fs` or `node:fs`) stay external
  as `node:*` imports (the Worker needs the `nodejs_compat` flag when the server uses
  them; a CommonJS `require` of one becomes an import), and so do `cloudflare:*` modules.

Reproducible: the same inputs give the same bytes. esbuild names every file in the output
(comments, lazy-module keys) relative to its working directory, so the build runs in a fresh
staging directory laid out the same way on every machine: `mcp-deploy/` (copies of the shim
modules, and `mcp-deploy/node_modules/<package>` symlinks to the shim's own pinned packages,
which the shim modules find first), `app/` (symlinks to the source directory's entries; its
`node_modules` left out when `node_modules` is given) and `node_modules` (a symlink to the
installed dependencies); symlinks are kept as paths (`preserveSymlinks`). An output naming
the staging directory is an error. Resolution walks up from each file as node does: the
server's imports find `app/node_modules` (the project's own, when `node_modules` is None) or
`node_modules`.

Errors: an esbuild error located in the server's files or its dependencies is an
`InputError` at `server.entry` (one issue per message, with file and line); any other
failure is an `OperationError` with esbuild's messages as detail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from orchestrator.build.npm import node_toolchain, npm_tool
from orchestrator.errors import InputError, Issue, OperationError, input_error

ESBUILD_VERSION = "0.28.2"
JOSE_VERSION = "6.2.18"  # panva/jose: JWT verification and remote JWKS for mode "oauth"
BUNDLE_TIMEOUT = 600  # seconds
SHIM_DIR = "mcp-deploy"  # staging names; they appear (relative) in the bundle
APP_DIR = "app"
OUT_FILE = "out/bundle.mjs"
APP_SPECIFIER = "mcp-deploy:app"
OAUTH_MODULES = {True: "oauth.mjs", False: "no-oauth.mjs"}  # `mcp-deploy:oauth`, by oauth mode
CONFIG_IDENTIFIER = "MCP_DEPLOY_CONFIG"
RESOLVE_EXTENSIONS = (".tsx", ".ts", ".mts", ".cts", ".jsx", ".js", ".mjs", ".cjs", ".json")
WORKERD_CONDITIONS = ("workerd", "worker", "browser")
DEFAULT_EXTERNAL: Mapping[str, tuple[str, ...]] = {"lambda.mjs": ("@aws-sdk/*",)}
NODE_BANNER = (
    'import { createRequire as __mcpDeployCreateRequire } from "node:module";\n'
    'import { dirname as __mcpDeployDirname } from "node:path";\n'
    'import { fileURLToPath as __mcpDeployFileURLToPath } from "node:url";\n'
    "const require = __mcpDeployCreateRequire(import.meta.url);\n"
    "const __filename = __mcpDeployFileURLToPath(import.meta.url);\n"
    "const __dirname = __mcpDeployDirname(__filename);"
)
MAX_ISSUES = 10
# Variables that would change what node or esbuild do: the build does not inherit them.
_IGNORED_ENVIRONMENT = frozenset({"NODE_OPTIONS", "NODE_PATH", "ESBUILD_BINARY_PATH"})

Progress = Callable[[str], None]
Platform = Literal["node", "workerd"]

# Runs with node in the staging directory; options on stdin, a JSON result on stdout.
BUILD_SCRIPT = r"""
import { builtinModules, createRequire } from "node:module";
import { readFileSync } from "node:fs";
const options = JSON.parse(readFileSync(0, "utf8"));
const esbuild = createRequire(options.esbuildPrefix + "/package.json")("esbuild");
const builtins = new Set(builtinModules.filter((name) => !name.startsWith("_")));
const app = { name: "mcp-deploy-app", setup(build) {
  build.onResolve({ filter: /^mcp-deploy:app$/ }, () => ({ path: options.app }));
  build.onResolve({ filter: /^mcp-deploy:oauth$/ }, () => ({ path: options.oauth }));
} };
const workerd = { name: "mcp-deploy-workerd", setup(build) {
  build.onResolve({ filter: /^cloudflare:/ }, (args) => ({ path: args.path, external: true }));
  build.onResolve({ filter: /^(node:)?[a-z_]+(\/[a-z_]+)*$/ }, (args) => {
    const name = args.path.replace(/^node:/, "");
    if (!args.path.startsWith("node:") && !builtins.has(name)) return undefined;
    const path = "node:" + name;
    if (args.kind === "require-call") return { path, namespace: "node-builtin" };
    return { path, external: true };
  });
  build.onLoad({ filter: /.*/, namespace: "node-builtin" }, (args) => ({
    contents: `import m from ${JSON.stringify(args.path)};\nmodule.exports = m;\n`,
    loader: "js",
  }));
} };
const message = (m) => ({
  text: m.text, plugin: m.pluginName || null, file: m.location?.file ?? null,
  line: m.location?.line ?? null, column: m.location?.column ?? null,
  lineText: m.location?.lineText ?? null,
  notes: (m.notes ?? []).map((n) => ({ text: n.text, file: n.location?.file ?? null,
                                        line: n.location?.line ?? null })),
});
const plugins = options.workerd ? [app, workerd] : [app];
let result;
try {
  const built = await esbuild.build({ ...options.build, absWorkingDir: process.cwd(), plugins });
  result = { ok: true, errors: [], warnings: built.warnings.map(message) };
} catch (error) {
  if (!Array.isArray(error?.errors)) throw error;
  result = { ok: false, errors: error.errors.map(message),
             warnings: (error.warnings ?? []).map(message) };
}
result.version = esbuild.version;
process.stdout.write(JSON.stringify(result));
"""


def shim_modules(shim: Path) -> list[Path]:
    """The files a bundle of `shim` may include from mcp-deploy: `shim` and its sibling
    modules (`*.mjs`, tests `*.test.mjs` left out), sorted by name. Packagers hash these."""
    names = {
        path.name
        for path in shim.parent.glob("*.mjs")
        if path.is_file() and not path.name.endswith(".test.mjs")
    }
    return [shim.parent / name for name in sorted(names | {shim.name})]


def oauth_mode(runtime_config: Mapping[str, Any]) -> bool:
    """Whether the runtime config's auth mode is "oauth" (the bundle needs the verifier)."""
    auth = runtime_config.get("auth")
    return isinstance(auth, Mapping) and auth.get("mode") == "oauth"


def shim_packages(runtime_config: Mapping[str, Any]) -> dict[str, str]:
    """The npm packages (name -> exact version) the shim modules of a bundle with this
    runtime config import: `jose` in mode "oauth", nothing otherwise."""
    return {"jose": JOSE_VERSION} if oauth_mode(runtime_config) else {}


def config_json(runtime_config: Mapping[str, Any]) -> str:
    """The runtime config as the shims receive it: compact JSON with sorted keys."""
    return json.dumps(dict(runtime_config), sort_keys=True, separators=(",", ":"))


def build_options(
    *,
    shim_name: str,
    platform: Platform,
    node_major: str,
    runtime_config: Mapping[str, Any],
    external: Sequence[str] | None = None,
) -> dict[str, Any]:
    """esbuild's build options for one bundle (see the module docstring), without what
    depends on the staging directory (the working directory, the app's path, plugins)."""
    if not node_major.isdigit():
        raise ValueError(f"not a Node major version: {node_major!r}")
    extra = DEFAULT_EXTERNAL.get(shim_name, ()) if external is None else tuple(external)
    options: dict[str, Any] = {
        "entryPoints": [f"{SHIM_DIR}/{shim_name}"],
        "outfile": OUT_FILE,
        "bundle": True,
        "format": "esm",
        "write": True,
        "minify": False,
        "treeShaking": True,
        "legalComments": "none",
        "charset": "utf8",
        "sourcemap": False,
        "preserveSymlinks": True,
        "resolveExtensions": list(RESOLVE_EXTENSIONS),
        "define": {
            CONFIG_IDENTIFIER: json.dumps(config_json(runtime_config)),
        },
        "external": sorted(set(extra)),
        "logLevel": "silent",
    }
    if platform == "node":
        options |= {
            "platform": "node",
            "target": f"node{node_major}",
            "banner": {"js": NODE_BANNER},
        }
    elif platform == "workerd":
        options |= {
            "platform": "browser",
            "target": "es2022",
            "conditions": list(WORKERD_CONDITIONS),
        }
        options["define"]["process.env.NODE_ENV"] = '"production"'
    else:
        raise ValueError(f"unknown platform {platform!r}")
    return options


def bundle(
    *,
    shim: Path,
    app_entry: Path,
    node_modules: Path | None,
    platform: Platform,
    node_major: str,
    runtime_config: Mapping[str, Any],
    out: Path,
    progress: Progress,
    source_dir: Path | None = None,
    external: Sequence[str] | None = None,
) -> Path:
    """Bundle `shim` with the server module `app_entry` into the one file `out` (returned).

    `node_modules`: the dependencies' `node_modules` directory, or a directory holding one
    (what `npm_dependencies` returns); None to use the project's own beside its sources.
    `source_dir`: the root of the server's sources (default: the nearest directory above
    `app_entry` with a package.json, else its directory); `app_entry` must be inside it.
    `external`: module specifiers left to the runtime (default `DEFAULT_EXTERNAL` for the
    shim). `InputError` (server.entry) for the server's problems, `OperationError` else.
    """
    options = build_options(
        shim_name=shim.name,
        platform=platform,
        node_major=node_major,
        runtime_config=runtime_config,
        external=external,
    )
    entry = Path(os.path.abspath(app_entry))
    if not entry.is_file():
        raise input_error("server.entry", f"{app_entry} does not exist or is not a file")
    root = Path(os.path.abspath(source_dir or _package_root(entry)))
    if not entry.is_relative_to(root):  # spelled through different symlinks, perhaps
        entry, root = entry.resolve(), root.resolve()
    if not entry.is_relative_to(root):
        raise input_error("server.entry", f"{app_entry} is not inside the sources {root}")
    modules = _node_modules_dir(node_modules)
    tools = node_toolchain()
    prefix = npm_tool("esbuild", ESBUILD_VERSION, progress)
    packages = {
        name: npm_tool(name, version, progress) / "node_modules" / name
        for name, version in shim_packages(runtime_config).items()
    }
    progress(f"bundling {entry.relative_to(root)} for {platform} with esbuild {ESBUILD_VERSION}")
    work = Path(tempfile.mkdtemp(prefix="mcp-deploy-esbuild-")).resolve()
    try:
        _stage(work, shim, root, modules, packages)
        request = {
            "esbuildPrefix": str(prefix),
            "app": str(work / APP_DIR / entry.relative_to(root)),
            "oauth": str(work / SHIM_DIR / OAUTH_MODULES[oauth_mode(runtime_config)]),
            "workerd": platform == "workerd",
            "build": options,
        }
        result = _run_build(tools.node, work, request)
        messages = {"root": root, "modules": modules or root / "node_modules", "shims": shim}
        for warning in result.get("warnings", [])[:5]:
            progress(f"esbuild warning: {_describe(warning, **messages)}")
        if not result.get("ok"):
            raise _failure(result.get("errors", []), **messages)
        data = (work / OUT_FILE).read_bytes()
        if str(work).encode() in data:
            raise OperationError(
                "the bundle names mcp-deploy's staging directory, so it is not reproducible",
                hint="this is a bug in mcp-deploy",
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _package_root(entry: Path) -> Path:
    for directory in entry.parents:
        if (directory / "package.json").is_file():
            return directory
    return entry.parent


def _node_modules_dir(given: Path | None) -> Path | None:
    if given is None:
        return None
    directory = given if given.name == "node_modules" else given / "node_modules"
    if not directory.is_dir():
        raise OperationError(f"{directory} is not a directory of installed npm packages")
    return directory.resolve()


def _stage(
    work: Path,
    shim: Path,
    root: Path,
    modules: Path | None,
    packages: Mapping[str, Path] | None = None,
) -> None:
    """Lay out the staging directory (see the module docstring); `packages`: the shim's own
    packages, name -> installed package directory."""
    (work / SHIM_DIR).mkdir()
    for module in shim_modules(shim):
        shutil.copyfile(module, work / SHIM_DIR / module.name)
    for name, directory in sorted((packages or {}).items()):
        link = work / SHIM_DIR / "node_modules" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(directory, target_is_directory=True)
    (work / APP_DIR).mkdir()
    for child in sorted(root.iterdir()):
        if modules is not None and child.name == "node_modules":
            continue
        (work / APP_DIR / child.name).symlink_to(child)
    if modules is not None:
        (work / "node_modules").symlink_to(modules, target_is_directory=True)
    (work / "build.mjs").write_text(BUILD_SCRIPT, encoding="utf-8")


def _run_build(node: str, work: Path, request: Mapping[str, Any]) -> dict[str, Any]:
    environment = {k: v for k, v in os.environ.items() if k not in _IGNORED_ENVIRONMENT}
    try:
        done = subprocess.run(
            [node, str(work / "build.mjs")],
            cwd=work,
            env=environment,
            input=json.dumps(request),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=BUNDLE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OperationError(f"bundling with esbuild took longer than {BUNDLE_TIMEOUT}s") from None
    except OSError as exc:
        raise OperationError(f"cannot run {node}: {exc.strerror}") from None
    try:
        result: dict[str, Any] = json.loads(done.stdout) if done.returncode == 0 else {}
    except ValueError:
        result = {}
    if "ok" not in result:
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-40:]
        raise OperationError(
            f"esbuild {ESBUILD_VERSION} did not run (node exit status {done.returncode})",
            hint="this is a bug in mcp-deploy or a broken esbuild install in its cache",
            detail="\n".join(tail),
        )
    if result.get("version") != ESBUILD_VERSION:
        raise OperationError(
            f"esbuild {result.get('version')} ran instead of {ESBUILD_VERSION}",
            hint="remove the npm-tools directory of mcp-deploy's cache and build again",
        )
    return result


def _real_path(file: str, *, root: Path, modules: Path, shims: Path) -> tuple[Path, str]:
    """(path on this machine, owner: "app" | "dependency" | "mcp-deploy" | "") of a file
    esbuild names relative to the staging directory."""
    head, _, rest = file.partition("/")
    if head == APP_DIR and rest:
        return root / rest, "app"
    if head == "node_modules" and rest:
        return modules / rest, "dependency"
    if head == SHIM_DIR and rest:
        return shims.parent / rest, "mcp-deploy"
    return Path(file), ""


def _describe(message: Mapping[str, Any], *, root: Path, modules: Path, shims: Path) -> str:
    file = message.get("file")
    if not file:
        return str(message.get("text", ""))
    path, _owner = _real_path(str(file), root=root, modules=modules, shims=shims)
    return f"{path}:{message.get('line')}:{message.get('column')}: {message.get('text')}"


_UNRESOLVED = re.compile(r'^Could not resolve "([^"]+)"')


def _hint(text: str, owner: str) -> str:
    unresolved = _UNRESOLVED.match(text)
    if unresolved and not unresolved[1].startswith((".", "/")):
        return (
            f"add {unresolved[1]} to the dependencies in package.json and run `npm install` "
            "(mcp-deploy installs what package-lock.json pins)"
        )
    if 'No loader is configured for ".node" files' in text:
        return (
            "a native addon (.node) cannot be bundled into one module: use a package "
            "without native code"
        )
    if owner == "dependency":
        return "a dependency of the server cannot be bundled: update or replace it"
    return "fix the server's code; esbuild bundles server.entry and everything it imports"


def _failure(
    errors: Sequence[Mapping[str, Any]], *, root: Path, modules: Path, shims: Path
) -> InputError | OperationError:
    """The error for esbuild's failed build (see the module docstring)."""
    issues: list[Issue] = []
    for error in errors:
        file = error.get("file")
        if not file:
            continue
        path, owner = _real_path(str(file), root=root, modules=modules, shims=shims)
        if owner in ("app", "dependency"):
            text = str(error.get("text", ""))
            line = error.get("line")
            issues.append(
                Issue(
                    where="server.entry",
                    message=f"esbuild: {text}",
                    hint=_hint(text, owner),
                    file=path,
                    line=int(line) if isinstance(line, int) else None,
                )
            )
    if issues:
        return InputError(issues[:MAX_ISSUES])
    detail = "\n".join(
        _describe(error, root=root, modules=modules, shims=shims) for error in errors
    )
    return OperationError(
        f"bundling with esbuild {ESBUILD_VERSION} failed",
        hint="this is a bug in mcp-deploy (the shim) or in esbuild; the messages are above",
        detail=detail or "esbuild gave no message",
    )
