"""Checks of `[server]` as a whole: which keys its runtime and transport need and forbid, and
whether every target the environments deploy to runs that runtime.

- runtime "python", transport "http": `entry` (an ASGI app);
- runtime "python", transport "stdio": `command` (mcp-deploy's bridge serves it over HTTP);
  not on a target that starts no process (Workers);
- runtime "binary": `binary` (a Linux executable serving HTTP itself, optionally made by
  `build`), neither `entry` nor `command`; only on targets that run binaries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from orchestrator.errors import Issue
from targets import registry

if TYPE_CHECKING:
    from orchestrator.spec.loader import LoadedSpec
    from orchestrator.spec.model import ServerSpec


def targets_in(spec: ServerSpec, environment: str) -> list[str]:
    """The targets `environment` can deploy to: declared at the top level or in its own layer."""
    own = spec.environment(environment).targets.declared()
    return sorted(set(spec.targets.declared()) | set(own))


def server_shape(loaded: LoadedSpec) -> Iterator[Issue]:
    """Every problem of `[server]`'s runtime, transport and the keys they need."""
    if loaded.spec.server.runtime == "binary":
        yield from _binary(loaded)
    else:
        yield from _python_only_keys(loaded)
        yield from _transport(loaded)


def _python_only_keys(loaded: LoadedSpec) -> Iterator[Issue]:
    server = loaded.spec.server
    for key, value in (("binary", server.binary), ("build", server.build)):
        if value is not None:
            yield loaded.issue(
                ("server", key),
                f'{key} is for runtime = "binary" (a Linux executable); this server is Python',
                f'set server.runtime = "binary", or remove {key}',
            )


def _binary(loaded: LoadedSpec) -> Iterator[Issue]:
    spec = loaded.spec
    server = spec.server
    if server.binary is None:
        yield loaded.issue(
            ("server", "binary"),
            'runtime = "binary" needs the path of the executable',
            'for example: binary = "target/release/weather", with build = ["cargo", "build", '
            '"--release", "--locked"] to make it',
        )
    for key, value in (("entry", server.entry), ("command", server.command)):
        if value is not None:
            yield loaded.issue(
                ("server", key),
                f'{key} is for runtime = "python": a binary serves MCP over HTTP itself',
                f"remove {key}",
            )
    if server.transport == "stdio":
        yield loaded.issue(
            ("server", "transport"),
            'a binary must serve MCP streamable HTTP on $PORT: transport = "stdio" is for '
            'runtime = "python"',
            'remove transport, or run a stdio program with runtime = "python" and command',
        )
    yield from _targets_run(loaded, "binary", "a Linux executable cannot run in it")


def _targets_run(loaded: LoadedSpec, runtime: str, why: str) -> Iterator[Issue]:
    """One issue per target (declared anywhere) that does not run `runtime`."""
    spec = loaded.spec
    refused: dict[str, str] = {}
    for env_name in spec.environment_names():
        for name in targets_in(spec, env_name):
            if runtime not in registry()[name].runtimes:
                own = name in spec.environment(env_name).targets.declared()
                table = f"environments.{env_name}.targets.{name}" if own else f"targets.{name}"
                refused.setdefault(name, table)
    for name, table in sorted(refused.items()):
        target = registry()[name]
        runs = [other.name for other in registry().values() if runtime in other.runtimes]
        yield loaded.issue(
            ("server", "runtime"),
            f'{target.title} ({table}) does not run runtime = "{runtime}": {why}',
            f"remove [{table}], or deploy to {' or '.join(runs)}",
        )


def _transport(loaded: LoadedSpec) -> Iterator[Issue]:
    """http needs `entry`, stdio needs `command` (and not the other), and a stdio server needs
    a target that can start a process: not Workers."""
    spec = loaded.spec
    server = spec.server
    if server.transport == "http":
        if server.entry is None:
            yield loaded.issue(
                ("server", "entry"),
                "missing required key",
                "for example: entry = 'weather.app:app' (module:attribute of the ASGI app), "
                'or transport = "stdio" with a command',
            )
        if server.command is not None:
            yield loaded.issue(
                ("server", "command"),
                'command starts a stdio server: it needs transport = "stdio"',
                'set server.transport = "stdio", or remove command (an http server has entry)',
            )
        return
    if server.command is None:
        yield loaded.issue(
            ("server", "command"),
            'transport = "stdio" needs the command that starts the server',
            'for example: command = ["python", "-m", "mcp_server_time"]',
        )
    if server.entry is not None:
        yield loaded.issue(
            ("server", "entry"),
            'a stdio server is started by command: entry is for transport = "http"',
            "remove entry",
        )
    for env_name in spec.environment_names():
        if "workers" in targets_in(spec, env_name):
            yield loaded.issue(
                ("server", "transport"),
                "a stdio server cannot run on Cloudflare Workers (a Worker starts no process)",
                "remove the workers target, or serve MCP over HTTP (server.entry)",
            )
            return
