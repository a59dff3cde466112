"""Click commands: parse, call the core, render. Heavy modules are imported inside commands.

Exit codes (docs/cli.md): 0 success; 1 the operation failed; 2 invalid input (spec, flags,
names, usage); 70 internal error; 130 interrupted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from orchestrator import __version__
from orchestrator.cli.render import (
    OutputMode,
    emit_input_error,
    emit_internal_error,
    emit_json,
    emit_operation_error,
)

if TYPE_CHECKING:
    from orchestrator.spec.loader import LoadedSpec

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "terminal_width": 100}


def _set_json(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    OutputMode.json = value
    return value


def json_option(func: F) -> F:
    """`--json`: machine-readable output on stdout (errors too)."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        is_eager=True,
        callback=_set_json,
        help="Write JSON to stdout instead of text.",
    )(func)


def _pairs(
    _ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got '{item}'", param=param)
        pairs.append((key.strip(), value))
    return pairs


def _load(ctx: click.Context) -> LoadedSpec:
    from orchestrator.spec.loader import load_spec

    spec_path: Path | None = ctx.find_root().params.get("spec")
    return load_spec(spec_path)


@click.group(context_settings=CONTEXT)
@click.option(
    "--spec",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="MCP_DEPLOY_SPEC",
    help="Spec file (default: nearest mcp-deploy.toml or pyproject.toml [tool.mcp-deploy]).",
)
@click.version_option(__version__, prog_name="mcp-deploy", message="%(prog)s %(version)s")
def cli(spec: Path | None) -> None:
    """Build an MCP server once, prove it locally, deploy the same artifact to AWS Lambda,
    Google Cloud Run or Cloudflare Workers.

    Exit codes: 0 ok, 1 operation failed, 2 invalid input, 70 internal error.
    """


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option("--name", help="Server name (default: derived from the directory name).")
@json_option
def init(directory: Path, name: str | None, as_json: bool) -> None:
    """Create a spec and a minimal working MCP server in DIRECTORY. Never overwrites."""
    from orchestrator.scaffold import scaffold

    result = scaffold(directory, name)
    if as_json:
        emit_json({"ok": True, "name": result.name, "files": [str(path) for path in result.files]})
        return
    click.echo(f"created MCP server '{result.name}' in {result.directory}:")
    for path in result.files:
        click.echo(f"  {path}")
    click.echo("next: mcp-deploy validate && mcp-deploy config explain --target lambda")


@cli.command()
@click.option("--env", "environment", help="Check this environment exists and summarise it.")
@json_option
@click.pass_context
def validate(ctx: click.Context, environment: str | None, as_json: bool) -> None:
    """Check the spec: structure, references and every environment's effective options."""
    from orchestrator.environments import check_environment_name

    loaded = _load(ctx)
    spec = loaded.spec
    if environment is not None:
        check_environment_name(spec, environment)
    names = [environment] if environment else spec.environment_names()
    environments: list[dict[str, str | None]] = [
        {"name": name, "promote_from": spec.environment(name).promote_from} for name in names
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
            }
        )
        return
    server = spec.server
    click.echo(f"ok: {loaded.path}")
    click.echo(
        f"  server        {server.name} (python {server.python}, {server.entry} at "
        f"{server.path}, auth {spec.auth.mode})"
    )
    click.echo(f"  targets       {', '.join(targets) or '(none declared)'}")
    listed = [
        f"{env['name']}" + (f" (from {env['promote_from']})" if env["promote_from"] else "")
        for env in environments
    ]
    click.echo(f"  environments  {', '.join(listed)}")


@cli.command()
@click.option(
    "--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write to a file."
)
def schema(output: Path | None) -> None:
    """Print the spec's JSON Schema (for editors: taplo, VS Code Even Better TOML)."""
    from orchestrator.spec.model import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@cli.command()
@click.option(
    "--target",
    default="all",
    show_default=True,
    help="Target to build, or 'all' (every buildable target the spec declares).",
)
@click.option(
    "--push",
    is_flag=True,
    help="Publish each artifact by digest (image to targets.cloudrun.registry; zip and "
    "bundle to their artifact_repository, when set).",
)
@json_option
@click.pass_context
def build(ctx: click.Context, target: str, push: bool, as_json: bool) -> None:
    """Build the server's artifacts: reproducible, with no environment config or secrets."""
    from orchestrator.build.pipeline import build as build_artifacts
    from orchestrator.cli.render import progress_reporter

    loaded = _load(ctx)
    with progress_reporter(enabled=not as_json) as progress:
        artifacts = build_artifacts(loaded, target, progress, push=push)
    if as_json:
        emit_json({"ok": True, "artifacts": [artifact.to_dict() for artifact in artifacts]})
        return
    for artifact in artifacts:
        click.echo(
            f"{artifact.kind:<15} {artifact.digest}  {artifact.size / 2**20:6.1f} MiB  "
            f"{artifact.location or artifact.path}"
        )


@cli.command()
@click.argument("url")
@click.option(
    "--token-env",
    metavar="NAME",
    help="Environment variable holding the bearer token (never pass a token as an argument).",
)
@click.option("--tool", help="Tool to call after tools/list.")
@click.option("--arguments", "arguments_json", default="{}", help="The call's arguments (JSON).")
@click.option("--expect", help="Substring the tool result must contain.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds for the whole test.")
@json_option
def smoke(
    url: str,
    token_env: str | None,
    tool: str | None,
    arguments_json: str,
    expect: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Check the MCP endpoint URL: initialize, tools/list and a tool call, timed.

    Exits 1 when the server fails the test, saying why in plain terms.
    """
    from orchestrator.errors import input_error
    from orchestrator.smoke import smoke as run_smoke

    try:
        arguments = json.loads(arguments_json)
    except ValueError:
        raise input_error(
            "--arguments", "is not valid JSON", 'e.g. --arguments \'{"name": "x"}\''
        ) from None
    if not isinstance(arguments, dict):
        raise input_error("--arguments", "must be a JSON object")
    token = None
    if token_env is not None:
        token = os.environ.get(token_env)
        if not token:
            raise input_error("--token-env", f"environment variable {token_env} is empty or unset")
    result = run_smoke(
        url, token=token, tool=tool, arguments=arguments, expect=expect, timeout=timeout
    )
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        click.echo(f"ok: {url} ({result.server}; {len(result.tools)} tools)")
        click.echo(
            f"  first response {result.first_response_ms:.0f} ms, tools/list "
            f"{result.list_tools_ms:.0f} ms"
            + (f", {tool} {result.call_ms:.0f} ms" if result.call_ms is not None else "")
        )
    else:
        click.echo(f"error: smoke test of {url} failed: {result.failure}", err=True)
        if result.hint:
            click.echo(f"  hint: {result.hint}", err=True)
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


@cli.group()
def config() -> None:
    """Inspect the effective configuration."""


@config.command()
@click.option("--env", "environment", default="local", show_default=True, help="Environment.")
@click.option("--target", help="Target (default: the spec's only declared target).")
@click.option(
    "--config",
    "config_flags",
    multiple=True,
    callback=_pairs,
    metavar="KEY=VALUE",
    help="Override a config value (repeatable).",
)
@click.option(
    "--set",
    "option_flags",
    multiple=True,
    callback=_pairs,
    metavar="OPTION=VALUE",
    help="Override a target option, e.g. memory=1024 (repeatable).",
)
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
    from orchestrator.environments import Overrides, resolve

    loaded = _load(ctx)
    overrides = Overrides.from_flags(config_flags, option_flags)
    resolved = resolve(loaded, environment, target, overrides)
    if as_json:
        emit_json(
            {
                "ok": True,
                "spec": str(loaded.path),
                "server": resolved.server,
                "environment": resolved.environment,
                "target": resolved.target,
                "settings": [
                    {"key": s.key, "value": s.value, "layer": s.layer} for s in resolved.settings
                ],
            }
        )
        return
    explain_table(resolved, str(loaded.path), resolved.settings)


def render_help() -> str:
    """The top-level help text, exactly as `mcp-deploy --help` prints it."""
    with click.Context(cli, info_name="mcp-deploy", **CONTEXT) as ctx:  # type: ignore[arg-type]
        return ctx.get_help() + "\n"


def run(args: list[str]) -> int:
    """Invoke the click group and map outcomes to exit codes (never a traceback for bad input)."""
    from orchestrator.errors import InputError, OperationError

    try:
        # Without standalone mode, click returns a `click.exceptions.Exit` code as a value.
        code = cli.main(args=args, prog_name="mcp-deploy", standalone_mode=False)
    except InputError as error:
        emit_input_error(error)
        return EXIT_INPUT
    except OperationError as error:
        emit_operation_error(error)
        return EXIT_FAILED
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except Exception as error:
        if os.environ.get("MCP_DEPLOY_DEBUG"):
            raise
        emit_internal_error(error)
        return EXIT_INTERNAL
    return code if isinstance(code, int) else EXIT_OK


if __name__ == "__main__":  # regenerate help.txt: python -m orchestrator.cli.app > help.txt
    click.echo(render_help(), nl=False)
