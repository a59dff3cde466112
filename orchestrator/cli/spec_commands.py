"""`init`, `validate`, `schema` and `config explain`: the spec and what it resolves to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orchestrator.cli.options import json_option, layer_options, load, overrides
from orchestrator.cli.render import emit_json

if TYPE_CHECKING:
    from orchestrator.scaffold import BinaryServer


@click.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option("--name", help="Server name (default: derived from the directory name).")
@click.option(
    "--stdio",
    "command",
    metavar="COMMAND",
    help="An existing stdio server instead: the command that starts it, e.g. "
    '"python -m mcp_server_time" (split like a shell does).',
)
@click.option(
    "--requirement",
    "requirements",
    multiple=True,
    metavar="REQ",
    help="With --stdio: a package that provides it (requirements.txt line), repeatable.",
)
@click.option(
    "--runtime",
    type=click.Choice(["python", "binary", "stdio"]),
    help="python: a new Python server (the default); stdio: an existing stdio server (with "
    "--stdio); binary: an existing server built as a Linux executable (Cargo and Go projects "
    "are recognised; else give --binary and --build).",
)
@click.option(
    "--binary",
    metavar="PATH",
    help="With --runtime binary: the executable, relative to DIRECTORY.",
)
@click.option(
    "--build",
    "build_command",
    metavar="COMMAND",
    help='With --runtime binary: the command that builds it, e.g. "cargo build --release".',
)
@json_option
def init(
    directory: Path,
    name: str | None,
    command: str | None,
    requirements: tuple[str, ...],
    runtime: str | None,
    binary: str | None,
    build_command: str | None,
    as_json: bool,
) -> None:
    """Create a spec and a minimal working MCP server in DIRECTORY, or a spec for an existing
    server: a stdio one (--stdio COMMAND) or a binary one (--runtime binary). Never
    overwrites."""
    from orchestrator.errors import input_error
    from orchestrator.scaffold import scaffold

    if requirements and command is None:
        raise input_error("--requirement", "--requirement goes with --stdio")
    if runtime == "stdio" and command is None:
        raise input_error("--runtime", "--runtime stdio needs --stdio COMMAND")
    argv = _split("--stdio", command)
    server = _binary_server(directory, runtime, binary, build_command)
    if server is not None and argv is not None:
        raise input_error("--stdio", "a binary server serves HTTP itself: drop --stdio")
    result = scaffold(directory, name, argv, list(requirements), server)
    if as_json:
        emit_json({"ok": True, "name": result.name, "files": [str(path) for path in result.files]})
        return
    from orchestrator.errors import printable

    made = "MCP server"
    if argv is not None or server is not None:
        made = "a spec for the " + ("stdio" if argv is not None else "binary") + " server"
    click.echo(printable(f"created {made} '{result.name}' in {result.directory}:"))
    for path in result.files:
        click.echo(printable(f"  {path}"))
    click.echo("next: mcp-deploy validate && mcp-deploy --target lambda --env local")


def _split(flag: str, command: str | None) -> list[str] | None:
    """`command` split like a shell does; `InputError` naming `flag` when it cannot be."""
    import shlex

    from orchestrator.errors import input_error

    if command is None:
        return None
    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise input_error(flag, f"cannot split the command: {error}") from None
    if not argv:
        raise input_error(flag, "the command is empty", f'e.g. {flag} "make server"')
    return argv


def _binary_server(
    directory: Path, runtime: str | None, binary: str | None, build: str | None
) -> BinaryServer | None:
    """The executable (and its build command) `init --runtime binary` writes in the spec:
    the flags, else what a Cargo or Go project in `directory` builds."""
    from orchestrator.errors import input_error
    from orchestrator.scaffold import BinaryServer, guess_binary

    if runtime != "binary":
        for flag, value in (("--binary", binary), ("--build", build)):
            if value is not None:
                raise input_error(flag, f"{flag} goes with --runtime binary")
        return None
    guessed = guess_binary(directory)
    argv = _split("--build", build)
    if binary is not None:
        return BinaryServer(binary, argv)
    if guessed is None:
        raise input_error(
            "--binary",
            f"no Cargo.toml or go.mod in {directory} to tell which executable it builds",
            'give it: --binary target/release/NAME --build "cargo build --release"',
        )
    return BinaryServer(guessed.binary, argv if argv is not None else guessed.build)


@click.command()
@click.option("--env", "environment", help="Check this environment exists and summarise it.")
@json_option
@click.pass_context
def validate(ctx: click.Context, environment: str | None, as_json: bool) -> None:
    """Check the spec: structure, references and every environment's effective options."""
    from orchestrator.build.checks import source_issues, source_warnings
    from orchestrator.environments import check_environment_name
    from orchestrator.errors import InputError
    from orchestrator.spec.checks import spec_warnings

    loaded = load(ctx)
    spec = loaded.spec
    issues = source_issues(loaded)
    if issues:
        raise InputError(issues)
    warnings = [*source_warnings(loaded), *spec_warnings(loaded)]
    if environment is not None:
        check_environment_name(spec, environment)
    names = [environment] if environment else spec.environment_names()
    environments: list[dict[str, str | None]] = [
        {
            "name": name,
            "kind": spec.environment_kind(name),
            "promote_from": spec.environment(name).promote_from,
        }
        for name in names
    ]
    targets = sorted(spec.targets.declared())
    if as_json:
        emit_json(
            {
                "ok": True,
                "spec": str(loaded.path),
                "server": spec.server.name,
                "targets": targets,
                "environments": environments,
                "warnings": [warning.to_dict() for warning in warnings],
            }
        )
        return
    for warning in warnings:
        click.echo(warning.render("warning"), err=True)
    server = spec.server
    click.echo(f"ok: {loaded.path}")
    if server.runtime == "binary":
        serves = f"binary {server.binary}"
    else:
        serves = f"python {server.python}, " + (
            server.entry or "stdio: " + " ".join(server.command or [])
        )
    click.echo(f"  server        {server.name} ({serves} at {server.path}, auth {spec.auth.mode})")
    click.echo(f"  targets       {', '.join(targets) or '(none declared)'}")
    listed = [
        f"{env['name']} ({env['kind']}"
        + (f", from {env['promote_from']}" if env["promote_from"] else "")
        + ")"
        for env in environments
    ]
    click.echo(f"  environments  {', '.join(listed)}")


@click.command()
@click.option(
    "--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write to a file."
)
def schema(output: Path | None) -> None:
    """Print the spec's JSON Schema (for editors: taplo, VS Code Even Better TOML)."""
    from orchestrator.spec.model import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    from orchestrator.errors import printable

    _write_schema(output, text)
    click.echo(printable(f"wrote {output}"), err=True)


def _write_schema(output: Path, text: str) -> None:
    """Write `text` to `output`: a missing directory or an impossible name is exit 2, a full
    disk or a refused write exit 1, each naming the file."""
    import errno

    from orchestrator.errors import OperationError, input_error
    from orchestrator.files import os_reason

    try:
        output.write_text(text, encoding="utf-8")
    except ValueError as error:
        raise input_error("--output", f"{output}: {os_reason(error)}") from None
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            raise input_error(
                "--output",
                f"cannot write {output}: directory {output.parent} does not exist",
                f"create it first (mkdir -p {output.parent})",
            ) from None
        if error.errno in (errno.ENAMETOOLONG, errno.EISDIR):
            raise input_error("--output", f"cannot write {output}: {os_reason(error)}") from None
        raise OperationError(
            f"cannot write {output}: {(error.strerror or str(error)).lower()}",
            "free some space on the device" if error.errno == errno.ENOSPC else None,
        ) from None


@click.group()
def config() -> None:
    """Inspect the effective configuration."""


@config.command()
@click.option("--env", "environment", default="local", show_default=True, help="Environment.")
@click.option("--target", help="Target (default: the spec's only declared target).")
@layer_options
@json_option
@click.pass_context
def explain(
    ctx: click.Context,
    environment: str,
    target: str | None,
    config_flags: list[tuple[str, str]],
    option_flags: list[tuple[str, str]],
    as_json: bool,
) -> None:
    """Show every effective value for ENV on TARGET and the layer it came from.

    Layers, lowest first: default, spec, environment, flag. Secrets show their source,
    never a value.
    """
    from orchestrator.cli.render import explain_table
    from orchestrator.environments import resolve

    loaded = load(ctx)
    resolved = resolve(loaded, environment, target, overrides(config_flags, option_flags))
    if as_json:
        emit_json(
            {
                "ok": True,
                "spec": str(loaded.path),
                "server": resolved.server,
                "environment": resolved.environment,
                "kind": loaded.spec.environment_kind(environment),
                "target": resolved.target,
                "settings": [
                    {"key": s.key, "value": s.value, "layer": s.layer} for s in resolved.settings
                ],
            }
        )
        return
    explain_table(resolved, str(loaded.path), resolved.settings)
