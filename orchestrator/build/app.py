"""The server's own part of an artifact: its selected files, the runtime shims, the runtime
config, all compiled for the target's Python. Shared by every packager."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from orchestrator.build.auth_config import runtime_auth
from orchestrator.build.bytecode import compile_tree
from orchestrator.build.context import BuildContext, InputsHash
from orchestrator.build.sources import select_sources
from orchestrator.secret_values import secret_files

RUNTIME_CONFIG_NAME = "mcp_deploy_runtime.json"
SHIMS = Path(__file__).resolve().parent.parent.parent / "targets" / "shim"
GATE = SHIMS / "mcp_deploy_gate.py"
OAUTH_SHIMS = [  # the gate's metadata and token checks, the issuer's keys: auth.mode "oauth"
    SHIMS / "mcp_deploy_oauth.py",
    SHIMS / "mcp_deploy_jwks.py",
]
# What the OAuth shim imports, vendored with the server's own requirements (one resolution:
# a conflicting pin of the server's is reported by the resolver, naming both).
OAUTH_REQUIREMENTS = ("pyjwt[crypto]==2.15.1",)
STDIO_SHIMS = [  # serve a stdio server (transport stdio): the bridge and its parts
    SHIMS / "mcp_deploy_stdio.py",
    SHIMS / "mcp_deploy_stdio_jsonrpc.py",
    SHIMS / "mcp_deploy_stdio_child.py",
]


def runtime_config(context: BuildContext) -> bytes:
    """Build-time facts the shims need: entry, paths, auth mode. No environment config."""
    spec = context.loaded.spec
    config: dict[str, Any] = {
        "entry": spec.server.app_entry,
        "path": spec.server.path,
        "health_path": spec.server.health_path,
        "auth": runtime_auth(spec),
        "secrets": sorted(spec.secrets),
    }
    if spec.server.transport == "stdio":  # the bridge (`entry`) starts this command
        config["transport"] = "stdio"
        config["command"] = spec.server.command
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def shim_requirements(context: BuildContext) -> tuple[str, ...]:
    """Requirements the Python shims add to the server's for this spec (none unless oauth)."""
    return OAUTH_REQUIREMENTS if context.loaded.spec.auth.mode == "oauth" else ()


def requirements_origin(context: BuildContext, origin: str) -> str:
    """`origin` (where the requirements come from, for messages), naming the OAuth gate's
    requirements when the spec adds them (a resolver conflict then names where each is from)."""
    extra = shim_requirements(context)
    return f"{origin} and the oauth gate's {', '.join(extra)}" if extra else origin


class AppPart:
    """The server's files plus `shims`, hashed into `inputs`, staged on demand."""

    def __init__(self, context: BuildContext, shims: list[Path], inputs: InputsHash) -> None:
        self.context = context
        spec = context.loaded.spec
        stdio = STDIO_SHIMS if spec.server.transport == "stdio" else []
        oauth = OAUTH_SHIMS if spec.auth.mode == "oauth" else []
        self.shims = [GATE, *oauth, *stdio, *shims]
        loaded = context.loaded
        self.sources = select_sources(
            context.source_dir, loaded.spec.server, keep_out=secret_files(loaded.spec, loaded.root)
        )
        self.config = runtime_config(context)
        inputs.add("runtime-config", self.config)
        for shim in self.shims:
            inputs.add_file(f"shim:{shim.name}", shim)
        for relative, path in self.sources.items():
            inputs.add_file(f"source:{relative}", path)

    def stage(self, directory: Path, prefix: str) -> Path:
        """Copy everything into `directory` and compile it as if it lived at `prefix`."""
        directory.mkdir(parents=True, exist_ok=True)
        for relative, path in self.sources.items():
            destination = directory / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
        for shim in self.shims:
            shutil.copyfile(shim, directory / shim.name)
        (directory / RUNTIME_CONFIG_NAME).write_bytes(self.config)
        compile_tree(directory, python=self.context.loaded.spec.server.python, prefix=prefix)
        return directory
