"""Which Node.js a base image has: read from the image, never from its tag.

The official `node` images set `NODE_VERSION=22.11.0` in their config: its major must be
`server.node`. A base without that variable must at least hold a `node` program in
/usr/local/bin or /usr/bin (its version is then the user's word: it cannot be read without
running it). The default base of a Node server is `docker.io/library/node:<major>-slim`,
pinned by digest in `mcp-deploy.lock` on the first build like the Python default.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from orchestrator.build.context import BuildContext
from orchestrator.errors import input_error
from targets.cloudrun.base_image import ChosenBase, pull
from targets.cloudrun.base_python import apply_layers, layer_entries

_NODE_VERSION = re.compile(r"^NODE_VERSION=v?(\d+)\.\d+")
NODE_PROGRAMS = ("usr/local/bin/node", "usr/bin/node")


def default_node_base(major: str) -> str:
    """The default base of a Node server on Node.js `major`."""
    return f"docker.io/library/node:{major}-slim"


def check_node(context: BuildContext, chosen: ChosenBase, platforms: Sequence[str]) -> None:
    """`InputError` unless every platform's image of the base has Node.js `server.node` (or,
    without NODE_VERSION in its config, a `node` program at all)."""
    major = context.loaded.spec.server.node
    where = "targets.cloudrun.base" if chosen.explicit else "server.node"
    for platform in platforms:
        image = pull(context, chosen, platform)
        run = image.config.get("config") or {}
        found = [
            match.group(1)
            for item in run.get("Env") or []
            if isinstance(item, str) and (match := _NODE_VERSION.match(item))
        ]
        if found:
            if found[-1] != major:
                raise input_error(
                    where,
                    f"the base image {chosen.pinned} has Node.js {found[-1]} and server.node is "
                    f"{major}",
                    f'set server.node = "{found[-1]}", or a base with Node.js {major}',
                )
            continue
        layers = [context.store.blob_path(layer["digest"]) for layer in image.layers]
        files = apply_layers(layer_entries(layer) for layer in layers)
        if not any(program in files for program in NODE_PROGRAMS):
            raise input_error(
                where,
                f"the base image {chosen.pinned} ({platform}) has no node program "
                "(/usr/local/bin/node or /usr/bin/node)",
                "set targets.cloudrun.base to a Node.js image pinned by digest",
            )
        context.progress(
            f"the base {chosen.pinned} does not say its Node.js version (no NODE_VERSION): "
            f"taking it for Node.js {major}"
        )
