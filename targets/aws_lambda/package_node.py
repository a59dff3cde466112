"""Package a Node server (`server.runtime = "node"`) as a Lambda zip for the managed
`nodejs{major}.x` runtime.

- An entry server (`server.entry`, a fetch handler): `index.mjs` at the zip's root, the esbuild
  bundle of mcp-deploy's Lambda shim (`targets/shim/node/lambda.mjs`: Function URL events in,
  the auth gate, secrets read at cold start with the runtime's own AWS SDK) and the server with
  its dependencies; handler `index.handler`.
- A command server (`server.command`: a program listening on $PORT, or a stdio one): the
  launcher as `bootstrap`, the runtime config, the sources and the production `node_modules`;
  the program attaches AWS's Lambda Web Adapter layer and `AWS_LAMBDA_EXEC_WRAPPER`, so the
  runtime starts the launcher, which runs the command with the runtime's `node`.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator import __version__
from orchestrator.artifacts import Artifact
from orchestrator.build.archive import Entry, build_epoch, write_zip_within
from orchestrator.build.context import BuildContext, InputsHash
from orchestrator.build.node_app import NodeCommand, NodeEntry
from targets.aws_lambda import LambdaOptions
from targets.aws_lambda.package import zip_limits

LAUNCHER_NAME = "bootstrap"
BUNDLE_NAME = "index.mjs"


def package_node_lambda(context: BuildContext, options: LambdaOptions) -> Artifact:
    """Build (or find in the store) the nodejs zip of the spec's Node server."""
    inputs = InputsHash("lambda-zip")
    inputs.add("mcp-deploy", __version__)
    inputs.add("epoch", str(build_epoch()))
    command = context.loaded.spec.server.command is not None
    part: NodeEntry | NodeCommand = (
        NodeCommand(context, options.arch, inputs)
        if command
        else NodeEntry(context, "lambda", inputs)
    )
    inputs_hash, cached = context.stored("lambda-zip", inputs, "zip")
    if cached is not None:
        return cached
    with context.store.scratch("lambda") as scratch:
        if isinstance(part, NodeEntry):
            bundled = part.bundle_to(Path(scratch) / BUNDLE_NAME)
            entries = [Entry(BUNDLE_NAME, source=bundled)]
        else:
            entries = part.entries(LAUNCHER_NAME)
        context.progress("writing the zip")
        zip_path = Path(scratch) / "lambda.zip"
        limits = zip_limits(
            "drop unneeded dependencies (devDependencies are never shipped), exclude files with "
            "server.exclude, or deploy to Cloud Run (no such limit)"
        )
        write_zip_within(entries, zip_path, limits)
        return context.store.keep(zip_path, "lambda-zip", "lambda", inputs_hash)
