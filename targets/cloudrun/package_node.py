"""Package a Node server (`server.runtime = "node"`) as an OCI image for Cloud Run: a Node.js
base (`base_node`: the spec's `targets.cloudrun.base`, else `node:<major>-slim` pinned in the
lock file, its Node.js major checked) plus one layer under `/app`.

- An entry server: `/app/server.mjs`, the esbuild bundle of mcp-deploy's Cloud Run shim
  (`targets/shim/node/serve.mjs`: an HTTP server on $PORT, the auth gate, graceful SIGTERM,
  secrets over stdin in the local emulation) and the server with its dependencies; started as
  `node /app/server.mjs`. Pure JavaScript: one layer serves every platform.
- A command server: the launcher (`/app/mcp-deploy-launch`, the entrypoint), the runtime
  config, the sources and the production `node_modules`; the launcher runs the command with
  the base's `node`. One platform (the launcher and any native module are for one CPU).
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator import __version__
from orchestrator.artifacts import Artifact
from orchestrator.build.archive import Entry, build_epoch, write_tar_layer
from orchestrator.build.context import BuildContext, InputsHash
from orchestrator.build.node_app import NodeCommand, NodeEntry
from orchestrator.errors import input_error
from orchestrator.oci import media
from orchestrator.oci.image import ImageChanges, assemble, index
from targets.cloudrun import CloudRunOptions
from targets.cloudrun.base_image import choose_base, pull
from targets.cloudrun.base_node import check_node, default_node_base
from targets.cloudrun.package import PLATFORM_ARCH, PORT, USER, image_labels, keep_image

APP_ROOT = "/app"
BUNDLE_NAME = "server.mjs"
LAUNCHER_NAME = "mcp-deploy-launch"


def package_node_image(context: BuildContext, options: CloudRunOptions) -> Artifact:
    """Build (or find in the store) the image of the spec's Node server."""
    spec = context.loaded.spec
    command = spec.server.command is not None
    if command and len(options.platforms) != 1:
        raise input_error(
            "targets.cloudrun.platforms",
            "a Node command server runs behind mcp-deploy's launcher, built for one CPU: an "
            "image of several platforms would run it on the wrong one",
            f'set platforms = ["{options.platforms[0]}"]',
        )
    major = spec.server.node
    chosen = choose_base(
        context,
        options,
        default_node_base(major),
        {"node": major},
        lambda base: check_node(context, base, options.platforms),
    )
    inputs = InputsHash("oci-image")
    inputs.add("mcp-deploy", __version__)
    inputs.add("epoch", str(build_epoch()))
    inputs.add("base", options.base or chosen.identity)
    arch = PLATFORM_ARCH[options.platforms[0]]
    part: NodeEntry | NodeCommand = (
        NodeCommand(context, arch, inputs) if command else NodeEntry(context, "serve", inputs)
    )
    config = (
        part.config
        if isinstance(part, NodeCommand)
        else json.dumps(part.config, sort_keys=True).encode()
    )
    labels = image_labels(context, config, inputs)
    inputs_hash, cached = context.stored("oci-image", inputs, "image")
    if cached is not None:
        return cached
    prefix = APP_ROOT.strip("/") + "/"
    if isinstance(part, NodeCommand):
        entrypoint = [f"{APP_ROOT}/{LAUNCHER_NAME}"]
    else:
        entrypoint = ["node", f"{APP_ROOT}/{BUNDLE_NAME}"]
    changes = ImageChanges(
        env={"PORT": str(PORT), "NODE_ENV": "production"},
        entrypoint=entrypoint,
        working_dir=APP_ROOT,
        user=USER,
        labels=labels,
        exposed_port=PORT,
        created=build_epoch(),
    )
    manifests: list[tuple[str, int, str]] = []
    with context.store.scratch("image") as work:
        if isinstance(part, NodeCommand):
            entries = part.entries(LAUNCHER_NAME, prefix=prefix)
        else:
            bundled = part.bundle_to(Path(work) / BUNDLE_NAME)
            entries = [Entry(prefix + BUNDLE_NAME, source=bundled)]
        context.progress("building the server layer")
        layer = write_tar_layer(entries, Path(work) / "app.tar.gz")
        for platform in options.platforms:
            base = pull(context, chosen, platform)
            digest, size = assemble(base, [layer], changes, context.store)
            manifests.append((digest, size, platform))
    if len(manifests) == 1:
        digest, size, _ = manifests[0]
        return keep_image(context, digest, media.OCI_MANIFEST, size, inputs_hash)
    digest, size = index(manifests, context.store)
    return keep_image(context, digest, media.OCI_INDEX, size, inputs_hash)
