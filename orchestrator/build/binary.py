"""The part of an artifact a binary server (`server.runtime = "binary"`) brings: its
executable, mcp-deploy's launcher in front of it, the runtime config and any files the spec
includes explicitly. Shared by the Lambda and Cloud Run packagers.

Layout (relative to the task root or the image's app directory):
- the launcher (`bootstrap` in a Lambda zip, `mcp-deploy-launch` in an image): a static Go
  program of ours (`targets/shim/launcher`) that reads the secrets (Lambda), starts the
  server with `PORT`, applies the gate (Origin check, then bearer or OAuth access tokens, and
  the Protected Resource Metadata in oauth mode) and proxies requests to it as loopback ones;
- `bin/<name of server.binary>`: the server, as built;
- `mcp_deploy_runtime.json`: binary, MCP path, health path, the gate's `auth` object
  (`orchestrator.build.auth_config`; no environment config, no secret values);
- the files `server.include` selects, when the spec sets it (a binary's source tree is not
  shipped by default: it is the executable that runs).

`server.build` runs first, in the source directory; the executable is then inspected
(`orchestrator.build.elf`) and its CPU checked against the artifact's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.build.app import RUNTIME_CONFIG_NAME
from orchestrator.build.archive import Entry
from orchestrator.build.auth_config import runtime_auth
from orchestrator.build.context import BuildContext, InputsHash
from orchestrator.build.elf import Executable, inspect_executable
from orchestrator.build.launcher import launcher_binary
from orchestrator.build.sources import select_sources
from orchestrator.errors import OperationError, input_error
from orchestrator.secret_values import secret_files

BUILD_OUTPUT_TAIL = 60  # lines of a failed build command shown


@dataclass(frozen=True)
class BinaryPart:
    """A binary server's files, inspected and hashed into the artifact's inputs."""

    executable: Executable
    launcher: Path
    config: bytes
    sources: dict[str, Path]

    @property
    def server_path(self) -> str:
        """Where the server lives in the artifact, relative to its root."""
        return f"bin/{self.executable.path.name}"

    def entries(self, launcher_name: str, prefix: str = "") -> list[Entry]:
        """Archive entries, each path under `prefix` (e.g. 'app/' for an image)."""
        server = Entry(prefix + self.server_path, source=self.executable.path, executable=True)
        return launcher_entries(
            self.launcher, launcher_name, self.config, self.sources, prefix, [server]
        )


def launcher_entries(
    launcher: Path,
    launcher_name: str,
    config: bytes,
    sources: Mapping[str, Path],
    prefix: str = "",
    extra: Sequence[Entry] = (),
) -> list[Entry]:
    """The entries of a server behind the launcher: the launcher (executable) as
    `launcher_name`, the runtime config, `extra`, then the selected `sources` (executable
    when they are on disk), every path under `prefix`. `InputError` when a source would
    replace one of mcp-deploy's files."""
    found = [
        Entry(prefix + launcher_name, source=launcher, executable=True),
        Entry(prefix + RUNTIME_CONFIG_NAME, data=config),
        *extra,
    ]
    taken = {entry.path for entry in found}
    for relative, path in sources.items():
        if prefix + relative in taken:
            raise input_error(
                "server.include",
                f"'{relative}' would replace a file mcp-deploy puts in the artifact",
                "leave it out with server.exclude",
            )
        executable = path.stat().st_mode & 0o111 != 0
        found.append(Entry(prefix + relative, source=path, executable=executable))
    return found


def binary_part(
    context: BuildContext, arch: str, settings: Mapping[str, str], inputs: InputsHash
) -> BinaryPart:
    """Build (`server.build`), inspect and check the server's executable for CPU `arch`
    ("x86_64"/"arm64"; `settings` gives, per CPU, the option setting that chooses it, e.g.
    'targets.lambda.arch = "arm64"'), get the launcher for it, and add all of it to
    `inputs`. `InputError` when the executable is missing, not a
    Linux executable or for another CPU; `OperationError` when the build command fails."""
    spec = context.loaded.spec
    server = spec.server
    assert server.binary is not None, "checked with the spec: runtime binary has a binary"
    if server.build is not None:
        run_build(context, server.build)
    executable = inspect_executable(context.source_dir / server.binary, "server.binary")
    if executable.arch != arch:
        raise input_error(
            "server.binary",
            f"{server.binary} is built for {executable.arch}, and the artifact is for {arch} "
            f"({settings[arch]})",
            f"build the server for {arch} Linux, or set {settings[executable.arch]}",
        )
    launcher = launcher_binary(arch, context.progress)
    config = runtime_config(context, f"bin/{executable.path.name}")
    sources: dict[str, Path] = {}
    if "include" in server.model_fields_set:
        keep_out = secret_files(spec, context.loaded.root)
        sources = select_sources(context.source_dir, server, keep_out=keep_out)
        sources.pop(server.binary, None)  # shipped as the server already
    inputs.add("runtime", "binary")
    inputs.add_file("server-binary", executable.path)
    inputs.add_file("launcher", launcher)
    inputs.add("runtime-config", config)
    for relative, path in sources.items():
        inputs.add_file(f"source:{relative}", path)
    return BinaryPart(executable, launcher, config, sources)


def runtime_config(context: BuildContext, server_path: str) -> bytes:
    """What the launcher reads at start-up (`targets/shim/launcher`). No environment config."""
    spec = context.loaded.spec
    config: dict[str, Any] = {
        "runtime": "binary",
        "binary": server_path,
        "path": spec.server.path,
        "health_path": spec.server.health_path,
        "auth": runtime_auth(spec),
        "secrets": sorted(spec.secrets),
    }
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def run_build(context: BuildContext, command: list[str]) -> None:
    """Run `server.build` in the source directory (the user's own environment, output kept
    for the error). `OperationError` with the output's tail when it fails."""
    context.progress("building the server: " + " ".join(command))
    program = shutil.which(command[0])
    if program is None:
        raise input_error(
            "server.build",
            f"'{command[0]}' is not on PATH",
            "install it, or build the binary yourself and remove server.build",
        )
    try:
        finished = subprocess.run(
            [program, *command[1:]],
            cwd=context.source_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
    except OSError as error:
        raise OperationError(f"server.build could not start {command[0]}: {error}") from None
    if finished.returncode != 0:
        output = finished.stdout.decode(errors="replace").splitlines()
        raise OperationError(
            f"server.build failed (exit status {finished.returncode}): {' '.join(command)}",
            hint="run it yourself in the source directory to see why",
            detail="\n".join(output[-BUILD_OUTPUT_TAIL:]),
        )
