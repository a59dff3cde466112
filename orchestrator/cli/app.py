"""Click commands: parse, call the core, render. Heavy modules are imported inside commands.

Exit codes (docs/cli.md): 0 success; 1 the operation failed; 2 invalid input (spec, flags,
names, usage); 70 internal error; 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
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
    from orchestrator.smoke import SmokeResult
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
@click.argument("url", required=False)
@click.option("--target", help="Smoke-test this target's deployment in --env (instead of URL).")
@click.option("--env", "environment", help="Environment of --target (default: local).")
@click.option(
    "--token-env",
    metavar="NAME",
    help="Environment variable holding the bearer token (never pass a token as an argument). "
    "With --target, the default is the environment's own token secret.",
)
@click.option(
    "--tool", help="Tool to call after tools/list (with --target: the spec's smoke.tool)."
)
@click.option("--arguments", "arguments_json", help="The call's arguments (JSON).")
@click.option("--expect", help="Substring the tool result must contain.")
@click.option("--timeout", type=float, help="Seconds for the whole test (default 30).")
@json_option
@click.pass_context
def smoke(
    ctx: click.Context,
    url: str | None,
    target: str | None,
    environment: str | None,
    token_env: str | None,
    tool: str | None,
    arguments_json: str | None,
    expect: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Check an MCP endpoint: initialize, tools/list and a tool call, timed.

    Give a URL, or --target (and --env, default local) to test that deployment with the spec's
    smoke call and the environment's token. Exits 1 when the server fails the test, saying why
    in plain terms.
    """
    from orchestrator.errors import input_error
    from orchestrator.smoke import smoke as run_smoke

    if (url is None) == (target is None):
        raise input_error("smoke", "give either a URL or --target", "e.g. smoke --target lambda")
    if environment is not None and target is None:
        raise input_error("--env", "--env needs --target")
    arguments: dict[str, Any] = {}
    if arguments_json is not None:
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
    log_tail = ""
    if target is not None:
        from orchestrator.environments import get_target
        from orchestrator.local import deploy

        loaded = _load(ctx)
        get_target(target)
        env_name = environment or "local"
        url = deploy.endpoint(loaded, target, env_name)
        if token_env is None:
            token = deploy.environment_token(loaded, env_name)
        settings = loaded.spec.smoke
        tool = tool or settings.tool
        arguments = arguments if arguments_json is not None else settings.arguments
        expect = expect if expect is not None else settings.expect
        timeout = timeout or settings.timeout
        if env_name == "local":
            log_tail = deploy.log_tail(loaded, target)
    assert url is not None
    result = run_smoke(
        url, token=token, tool=tool, arguments=arguments, expect=expect, timeout=timeout or 30.0
    )
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        click.echo(f"ok: {url} ({result.server}; {len(result.tools)} tools)")
        click.echo("  " + smoke_timings(result, tool))
    else:
        click.echo(f"error: smoke test of {url} failed: {result.failure}", err=True)
        if result.hint:
            click.echo(f"  hint: {result.hint}", err=True)
        if log_tail:
            click.echo("  server log (last lines):\n" + log_tail.rstrip(), err=True)
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


def smoke_timings(result: SmokeResult, tool: str | None) -> str:
    cold = result.cold_start_ms
    return (
        (f"cold start {cold:.0f} ms (start to first MCP response), " if cold else "")
        + f"first response {result.first_response_ms:.0f} ms, tools/list "
        f"{result.list_tools_ms:.0f} ms"
        + (f", {tool} {result.call_ms:.0f} ms" if result.call_ms is not None else "")
    )


def _local_only(environment: str) -> None:
    from orchestrator.errors import input_error

    if environment != "local":
        raise input_error(
            "--env",
            f"'{environment}' is a cloud environment; this version deploys to 'local' only",
            "deploy --env local runs the artifact in an emulation of its target",
        )


def _overrides(config_flags: list[tuple[str, str]], option_flags: list[tuple[str, str]]) -> Any:
    from orchestrator.environments import Overrides

    return Overrides.from_flags(config_flags, option_flags)


def layer_options(func: F) -> F:
    """`--config KEY=VALUE` and `--set OPTION=VALUE` (the flag layer)."""
    func = click.option(
        "--set",
        "option_flags",
        multiple=True,
        callback=_pairs,
        metavar="OPTION=VALUE",
        help="Override a target option, e.g. memory=1024 (repeatable).",
    )(func)
    return click.option(
        "--config",
        "config_flags",
        multiple=True,
        callback=_pairs,
        metavar="KEY=VALUE",
        help="Override a config value (repeatable).",
    )(func)


@cli.command()
@click.option("--target", help="Target (default: the spec's only declared target).")
@click.option("--env", "environment", default="local", show_default=True, help="Environment.")
@click.option("--port", type=click.IntRange(0, 65535), help="Local port (default: kept, or free).")
@layer_options
@json_option
@click.pass_context
def deploy(
    ctx: click.Context,
    target: str | None,
    environment: str,
    port: int | None,
    config_flags: list[tuple[str, str]],
    option_flags: list[tuple[str, str]],
    as_json: bool,
) -> None:
    """Deploy the server to ENV and smoke-test it; record the deployment.

    --env local builds (or reuses) the artifact and runs it in the background in an emulation
    of its target (Lambda: awslambdaric behind a Function URL front door; Cloud Run: a
    container), then proves it over MCP. Exits 1, stopping it, when the smoke test fails.
    """
    from orchestrator.cli.render import progress_reporter
    from orchestrator.local.deploy import deploy_local

    _local_only(environment)
    loaded = _load(ctx)
    overrides = _overrides(config_flags, option_flags)
    with progress_reporter(enabled=not as_json) as progress:
        record, result = deploy_local(loaded, target, overrides, progress, port)
    if as_json:
        emit_json({"ok": True, "record": record.to_dict()})
        return
    click.echo(f"deployed {record.server} to {record.environment} on {record.target}: {record.url}")
    click.echo(f"  artifact  {record.artifact_kind} {record.artifact_digest}")
    click.echo(f"  smoke     ok: {smoke_timings(result, loaded.spec.smoke.tool)}")
    click.echo(f"  stop it   mcp-deploy destroy --env local --target {record.target}")


@cli.command(name="run")
@click.option("--target", help="Target (default: the spec's only declared target).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port (default: free).")
@layer_options
@click.pass_context
def run_command(
    ctx: click.Context,
    target: str | None,
    port: int,
    config_flags: list[tuple[str, str]],
    option_flags: list[tuple[str, str]],
) -> None:
    """Run the artifact in the foreground with the `local` environment; Ctrl-C stops it.

    Same emulation as deploy --env local, logs on stderr; the smoke test runs once it is up.
    """
    import signal
    import threading

    from orchestrator.cli.render import progress_reporter
    from orchestrator.local.deploy import prepare, smoke_launch

    loaded = _load(ctx)
    overrides = _overrides(config_flags, option_flags)
    with progress_reporter(enabled=True) as progress:
        prepared = prepare(loaded, target, overrides, progress, port)

    def ready(url: str) -> None:
        click.echo(f"serving {loaded.spec.server.name} ({prepared.resolved.target}) at {url}")
        sys.stdout.flush()
        click.echo("  Ctrl-C to stop", err=True)

        def check() -> None:
            result = smoke_launch(loaded, url, prepared.token)
            verdict = (
                "ok: " + smoke_timings(result, loaded.spec.smoke.tool)
                if result.ok
                else (
                    f"FAILED: {result.failure}" + (f" (hint: {result.hint})" if result.hint else "")
                )
            )
            click.echo(f"smoke {verdict}", err=True)

        threading.Thread(target=check, daemon=True).start()

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # stop as cleanly as on Ctrl-C
    signal.signal(signal.SIGINT, interrupt)
    try:
        prepared.runner.run_foreground(prepared.launch, ready)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@cli.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the server's local deployments (and forget the ones that are gone)."""
    from orchestrator.local.deploy import status as local_status

    loaded = _load(ctx)
    report = local_status(loaded)
    if as_json:
        emit_json(
            {
                "ok": True,
                "local": [
                    {**entry.deployment.to_dict(), "running": entry.running} for entry in report
                ],
            }
        )
        return
    if not report:
        click.echo(f"{loaded.spec.server.name}: nothing deployed locally")
    for entry in report:
        deployment = entry.deployment
        state = "running" if entry.running else "gone (stopped outside mcp-deploy; forgotten)"
        click.echo(
            f"{deployment.target:<10} {state:<8} {deployment.url}  "
            f"{deployment.artifact_digest[:19]}  since {deployment.started}"
        )


@cli.command()
@click.option("--target", help="Target (default: the only local deployment).")
@click.option("-n", "--lines", default=40, show_default=True, help="Lines of the log's tail.")
@click.option("-f", "--follow", is_flag=True, help="Then print new lines until it stops.")
@click.pass_context
def logs(ctx: click.Context, target: str | None, lines: int, follow: bool) -> None:
    """Print the log of a local deployment (Lambda: CloudWatch-style lines)."""
    from orchestrator.local.deploy import running

    runner, deployment = running(_load(ctx), target)
    click.echo(runner.log_tail(deployment.local_handle, lines), nl=False)
    if follow:
        try:
            for text in runner.follow_log(deployment.local_handle):
                click.echo(text, nl=False)
        except KeyboardInterrupt:
            pass


@cli.command()
@click.option("--env", "environment", required=True, help="Environment (local).")
@click.option("--target", help="Only this target (default: every local deployment).")
@json_option
@click.pass_context
def destroy(ctx: click.Context, environment: str, target: str | None, as_json: bool) -> None:
    """Stop the server's deployments in ENV and leave nothing behind."""
    from orchestrator.environments import get_target
    from orchestrator.local.deploy import destroy_local

    _local_only(environment)
    if target is not None:
        get_target(target)
    loaded = _load(ctx)
    stopped = destroy_local(loaded, target)
    if as_json:
        emit_json({"ok": True, "stopped": [d.to_dict() for d in stopped]})
        return
    if not stopped:
        click.echo("nothing was running locally")
    for deployment in stopped:
        click.echo(f"stopped {deployment.target} ({deployment.url})")


@cli.group()
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
