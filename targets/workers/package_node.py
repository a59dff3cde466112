"""Package a Node server (`server.runtime = "node"`, `server.entry`: a fetch handler) as a
JavaScript module Worker bundle: one deterministic zip of

- `worker.mjs`: the main module, the esbuild bundle of mcp-deploy's Workers shim
  (`targets/shim/node/worker.mjs`: the gate: Origin, then the token binding in mode bearer, or
  JWT access tokens checked with jose in mode oauth) and the server with its dependencies, for
  workerd (`workerd`/`worker` export conditions, `node:*` builtins left to
  the runtime's `nodejs_compat`);
- `mcp_deploy_worker.json`: what a Worker needs besides its code, read by the local runner
  (`targets.workers.local`) and the program: `main_module`, `modules` (name and type: esm,
  commonjs, text, data, json, wasm), `compatibility_date`, `compatibility_flags` (the spec's
  plus `nodejs_compat`, which also fills `process.env` from the bindings).

Config and secrets are not in it: they are the deployment's bindings. A bundle over
Cloudflare's size limits fails here, naming the limit (`write_worker_zip`).
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator import __version__
from orchestrator.artifacts import Artifact
from orchestrator.build.archive import Entry, build_epoch
from orchestrator.build.context import BuildContext, InputsHash
from orchestrator.build.node_app import NodeEntry
from targets.workers import WorkersOptions, effective_flags
from targets.workers.package import write_worker_zip

MAIN_MODULE = "worker.mjs"
METADATA = "mcp_deploy_worker.json"


def worker_metadata(options: WorkersOptions) -> bytes:
    """`mcp_deploy_worker.json` of a Node bundle built with `options`."""
    document = {
        "format": 1,
        "runtime": "node",
        "main_module": MAIN_MODULE,
        "modules": [{"name": MAIN_MODULE, "type": "esm"}],
        "compatibility_date": options.compatibility_date.isoformat(),
        "compatibility_flags": effective_flags(options, "node"),
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def package_node_workers(context: BuildContext, options: WorkersOptions) -> Artifact:
    """Build (or find in the store) the Worker bundle of the spec's Node server."""
    metadata = worker_metadata(options)
    inputs = InputsHash("workers-bundle")
    inputs.add("mcp-deploy", __version__)
    inputs.add("epoch", str(build_epoch()))
    inputs.add("metadata", metadata)
    part = NodeEntry(context, "worker", inputs)
    inputs_hash, cached = context.stored("workers-bundle", inputs, "bundle")
    if cached is not None:
        return cached
    with context.store.scratch("workers") as scratch:
        bundled = part.bundle_to(Path(scratch) / MAIN_MODULE)
        bundle = Path(scratch) / "worker.zip"
        entries = [Entry(MAIN_MODULE, source=bundled), Entry(METADATA, data=metadata)]
        write_worker_zip(context, entries, bundle)
        return context.store.keep(bundle, "workers-bundle", "workers", inputs_hash)
