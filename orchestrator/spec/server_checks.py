"""Checks of `[server]` as a whole: which keys its runtime and transport need and forbid, and
whether every target the environments deploy to runs that runtime.

- runtime "python", transport "http": `entry` (an ASGI app);
- runtime "python", transport "stdio": `command` (mcp-deploy's bridge serves it over HTTP);
  not on a target that starts no process (Workers);
- runtime "binary": `binary` (a Linux executable serving HTTP itself, optionally made by
  `build`), neither `entry` nor `command`; only on targets that run binaries;
- runtime "node": `entry` (a fetch-handler module, every target) or `command` (a program
  listening on $PORT, or stdio; not on Workers), not both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from orchestrator.errors import Issue
from orchestrator.spec.server import NODE_ENTRY, PYTHON_ENTRY
from targets import registry
from targets.base import Target

if TYPE_CHECKING:
    from orchestrator.spec.loader import LoadedSpec
    from orchestrator.spec.model import ServerSpec


def targets_in(spec: ServerSpec, environment: str) -> list[str]:
    """The targets `environment` can deploy to: declared at the top level or in its own layer."""
    own = spec.environment(environment).targets.declared()
    return sorted(set(spec.targets.declared()) | set(own))


def server_shape(loaded: LoadedSpec) -> Iterator[Issue]:
    """Every problem of `[server]`'s runtime, transport and the keys they need."""
    runtime = loaded.spec.server.runtime
    if runtime == "binary":
        yield from _binary(loaded)
        return
    yield from _binary_only_keys(loaded)
    if runtime == "node":
        yield from _node(loaded)
        return
    entry = loaded.spec.server.entry
    if entry is not None and PYTHON_ENTRY.match(entry) is None:
        yield loaded.issue(
            ("server", "entry"),
            f"'{entry}' is a file: a Python server's entry is module:attribute of its ASGI app",
            'for example: entry = "weather.app:app", or set server.runtime = "node"',
        )
    yield from _transport(loaded)


def _binary_only_keys(loaded: LoadedSpec) -> Iterator[Issue]:
    server = loaded.spec.server
    for key, value in (("binary", server.binary), ("build", server.build)):
        if value is not None:
            yield loaded.issue(
                ("server", key),
                f'{key} is for runtime = "binary" (a Linux executable); this server is '
                f"{server.runtime.capitalize()}",
                f'set server.runtime = "binary", or remove {key}',
            )


def _node(loaded: LoadedSpec) -> Iterator[Issue]:
    """A fetch-handler module (`entry`) or a program (`command`), not both; stdio is a
    command; a command cannot run on a target that starts no process."""
    server = loaded.spec.server
    if server.entry is not None and NODE_ENTRY.match(server.entry) is None:
        yield loaded.issue(
            ("server", "entry"),
            f"'{server.entry}' is module:attribute (Python): a Node server's entry is the path "
            "of a module whose default export is { fetch }",
            'for example: entry = "src/server.ts"',
        )
    if server.entry is not None and server.command is not None:
        yield loaded.issue(
            ("server", "command"),
            "a Node server is an entry module or a command, not both",
            "keep entry (a fetch handler, every target) or command (a program), not both",
        )
    elif server.entry is None and server.command is None:
        yield loaded.issue(
            ("server", "entry"),
            'runtime = "node" needs entry (a module exporting { fetch }) or command',
            'for example: entry = "src/server.ts", or command = ["node", "dist/index.js"]',
        )
    if server.transport == "stdio" and server.command is None:
        yield loaded.issue(
            ("server", "command"),
            'transport = "stdio" needs the command that starts the server',
            'for example: command = ["node", "node_modules/some-server/dist/index.js"]',
        )
    if server.command is not None:
        yield from _targets_run(
            loaded,
            "node",
            "a Node command (a process) cannot run there: a Worker runs a fetch handler",
            only=lambda target: target.name != "workers",
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
            'runtime = "python" or "node" (a command)',
            "remove transport, or serve MCP over HTTP from the binary",
        )
    yield from _targets_run(loaded, "binary", "a Linux executable cannot run in it")


def _targets_run(
    loaded: LoadedSpec,
    runtime: str,
    why: str,
    only: Callable[[Target], bool] = lambda _target: True,
) -> Iterator[Issue]:
    """One issue per target (declared anywhere) that does not run `runtime` (or that `only`
    rejects)."""
    spec = loaded.spec
    refused: dict[str, str] = {}
    for env_name in spec.environment_names():
        for name in targets_in(spec, env_name):
            target = registry()[name]
            if runtime not in target.runtimes or not only(target):
                own = name in spec.environment(env_name).targets.declared()
                table = f"environments.{env_name}.targets.{name}" if own else f"targets.{name}"
                refused.setdefault(name, table)
    for name, table in sorted(refused.items()):
        target = registry()[name]
        runs = [
            other.name for other in registry().values() if runtime in other.runtimes and only(other)
        ]
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
