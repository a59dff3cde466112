"""`init`, `validate`, `schema` and `config explain`: the spec and what it resolves to."""

from __future__ import annotations

import json
from pathlib import Path

import click

from orchestrator.cli.options import json_option, layer_options, load, overrides
from orchestrator.cli.render import emit_json


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
@json_option
def init(
    directory: Path,
    name: str | None,
    command: str | None,
    requirements: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create a spec and a minimal working MCP server in DIRECTORY, or with --stdio a spec for
    an existing stdio server. Never overwrites."""
    import shlex

    from orchestrator.errors import input_error
    from orchestrator.scaffold import scaffold

    if requirements and command is None:
        raise input_error("--requirement", "--requirement goes with --stdio")
    try:
        argv = shlex.split(command) if command is not None else None
    except ValueError as error:
        raise input_error("--stdio", f"cannot split the command: {error}") from None
    if argv is not None and not argv:
        raise input_error("--stdio", "the command is empty", 'e.g. --stdio "python -m server"')
    result = scaffold(directory, name, argv, list(requirements))
    if as_json:
        emit_json({"ok": True, "name": result.name, "files": [str(path) for path in result.files]})
        return
    from orchestrator.errors import printable

    made = "a spec for the stdio server" if argv is not None else "MCP server"
    click.echo(printable(f"created {made} '{result.name}' in {result.directory}:"))
    for path in result.files:
        click.echo(printable(f"  {path}"))
    click.echo("next: mcp-deploy validate && mcp-deploy --target lambda --env local")


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
    click.echo(
        f"  server        {server.name} (python {server.python}, "
        f"{server.entry or 'stdio: ' + ' '.join(server.command or [])} at "
        f"{server.path}, auth {spec.auth.mode})"
    )
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
