"""`deploy` (also `mcp-deploy --target T [--env E]`), `plan`, `run`, `status`, `logs` and
`destroy`: thin wrappers over `orchestrator.deploy.flow`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from orchestrator.cli.fleet_commands import FLEET_DIR, fleet_directory
from orchestrator.cli.options import json_option, layer_options, load, overrides
from orchestrator.cli.release_commands import NO_ROLLBACK_HELP
from orchestrator.cli.render import emit_json
from orchestrator.cli.smoke_command import smoke_timings
from orchestrator.errors import OperationError

if TYPE_CHECKING:
    from orchestrator.deploy.flow import Plan
    from orchestrator.deploy.observe import Status
    from orchestrator.deploy.request import DeploymentRequest
    from orchestrator.fleet import OfflinePlanned

TARGET_HELP = "Target (default: the spec's only declared target)."
ENV_HELP = "Environment (default: local)."


@click.command()
@click.option("--target", help=TARGET_HELP)
@click.option("--env", "environment", default="local", help=ENV_HELP)
@click.option(
    "--port", type=click.IntRange(0, 65535), help="Local port (kind local; default: kept, or free)."
)
@click.option("--no-rollback", is_flag=True, help=NO_ROLLBACK_HELP)
@layer_options
@json_option
@click.pass_context
def deploy(
    ctx: click.Context,
    target: str | None,
    environment: str,
    port: int | None,
    no_rollback: bool,
    config_flags: list[tuple[str, str]],
    option_flags: list[tuple[str, str]],
    as_json: bool,
) -> None:
    """Deploy the server to ENV, smoke-test it over MCP, and record it.

    Short form: mcp-deploy --target T [--env E]. Builds (or reuses) the artifact, hands it to
    the environment's engine (kind local: an emulation of the target on this machine), proves
    it with the spec's smoke test and records the deployment. A failing smoke test puts the
    previous deployment back and checks it again (exit 3; 4 when nothing could be restored,
    or with --no-rollback, which leaves the failed one running).
    """
    from orchestrator.cli.render import progress_reporter
    from orchestrator.deploy import flow

    loaded = load(ctx)
    with progress_reporter(enabled=not as_json) as progress:
        outcome = flow.deploy(
            loaded,
            environment,
            target,
            overrides(config_flags, option_flags),
            progress,
            port,
            rollback=not no_rollback,
        )
    record = outcome.record
    if as_json:
        emit_json({"ok": True, "record": record.to_dict(), "warnings": outcome.warnings})
        return
    click.echo(f"deployed {record.server} to {record.environment} on {record.target}: {record.url}")
    click.echo(f"  artifact  {record.artifact_kind} {record.artifact_digest}")
    click.echo(f"  smoke     ok: {smoke_timings(outcome.smoke, loaded.spec.smoke.tool)}")
    for warning in outcome.warnings:
        click.echo(f"  warning   {warning}", err=True)
    click.echo(
        f"  remove    mcp-deploy destroy --env {record.environment} --target {record.target}"
    )


@click.command()
@click.argument("directory", required=False, type=FLEET_DIR, metavar="[DIR]")
@click.option("--target", help=TARGET_HELP)
@click.option("--env", "environment", default="local", help=ENV_HELP)
@click.option(
    "--offline",
    is_flag=True,
    help="Cloud environments: run the target's Pulumi program under the mock runtime "
    "(no Pulumi CLI, no credentials) and show the resources it declares.",
)
@layer_options
@json_option
@click.pass_context
def plan(
    ctx: click.Context,
    directory: Path | None,
    target: str | None,
    environment: str,
    offline: bool,
    config_flags: list[tuple[str, str]],
    option_flags: list[tuple[str, str]],
    as_json: bool,
) -> None:
    """Show the deployment request for ENV and what its engine would change, changing nothing.

    The request names the artifact by digest (built first when the store lacks it) and the
    secrets by reference. For a cloud environment the plan is a Pulumi preview (it reads the
    env:/file: secret values, and shows none); with --offline, the resources and inputs the
    program would declare, secrets as [secret], no secret value read. With DIR: every spec
    under DIR, on every target ENV deploys to (or --target); exit code the worst of them.
    """
    from orchestrator.cli.render import progress_reporter
    from orchestrator.deploy import flow

    fleet = fleet_directory(ctx, directory)
    if fleet is not None:
        if config_flags or option_flags:
            raise click.UsageError("--config and --set apply to one spec: not with DIR")
        from orchestrator.cli.fleet_commands import plan_fleet

        ctx.exit(plan_fleet(fleet, environment, target, offline, as_json))
    loaded = load(ctx)
    if offline:
        with progress_reporter(enabled=not as_json) as progress:
            planned = flow.plan_offline(
                loaded, environment, target, overrides(config_flags, option_flags), progress
            )
        if as_json:
            emit_json(offline_plan_json(planned))
            return
        render_offline(planned)
        return
    with progress_reporter(enabled=not as_json) as progress:
        result = flow.plan(
            loaded, environment, target, overrides(config_flags, option_flags), progress
        )
    if as_json:
        emit_json(plan_json(result))
        return
    render_plan(result)


def plan_json(result: Plan) -> dict[str, Any]:
    """`plan --json` of one target."""
    return {
        "ok": True,
        "request": result.request.to_dict(),
        "request_hash": result.request.request_hash,
        "changes": [vars(change) for change in result.changes],
        "warnings": result.warnings,
    }


def offline_plan_json(planned: OfflinePlanned) -> dict[str, Any]:
    """`plan --offline --json` of one target."""
    request, offline_plan, warnings = planned
    return {
        "ok": True,
        "offline": True,
        "request": request.to_dict(),
        "request_hash": request.request_hash,
        **offline_plan.to_dict(),
        "warnings": warnings,
    }


def render_offline(planned: OfflinePlanned) -> None:
    """`plan --offline` of one target as text (warnings on stderr)."""
    from orchestrator.cli.plan_render import render_offline_plan

    request, offline_plan, warnings = planned
    render_offline_plan(request, offline_plan)
    for warning in warnings:
        click.echo(f"  warning   {warning}", err=True)


def render_plan(result: Plan) -> None:
    """`plan` of one target as text (warnings on stderr)."""
    request = result.request
    artifact = request.artifact
    click.echo(
        f"plan: {request.server} to '{request.environment}' on {request.target} "
        f"(engine {request.engine})"
    )
    click.echo(f"  artifact  {artifact.kind} {artifact.digest} ({artifact.size / 2**20:.1f} MiB)")
    click.echo(f"  request   {request.request_hash}")
    for change in result.changes:
        click.echo(
            f"  {change.action:<9} {change.what}" + (f": {change.detail}" if change.detail else "")
        )
    for name, value in request.config.items():
        click.echo(f"  config    {name}={value}")
    for name, ref in request.secrets.items():
        click.echo(f"  secret    {name} <- {ref}")
    for name, option in request.options.items():
        click.echo(f"  option    {name} = {option}")
    for warning in result.warnings:
        click.echo(f"  warning   {warning}", err=True)


@click.command(name="run")
@click.option("--target", help=TARGET_HELP)
@click.option("--env", "environment", default="local", help="Environment of kind local.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port (default: free).")
@layer_options
@click.pass_context
def run_command(
    ctx: click.Context,
    target: str | None,
    environment: str,
    port: int,
    config_flags: list[tuple[str, str]],
    option_flags: list[tuple[str, str]],
) -> None:
    """Run the artifact in the foreground in a local-kind environment; Ctrl-C stops it.

    Same emulation as deploy, logs on stderr; the smoke test runs once it is up.
    """
    import signal
    import threading

    from orchestrator.deploy import flow, gate

    loaded = load(ctx)

    def ready(url: str, request: DeploymentRequest) -> None:
        click.echo(f"serving {request.server} ({request.target}, {request.environment}) at {url}")
        sys.stdout.flush()
        click.echo("  Ctrl-C to stop", err=True)

        def check() -> None:
            result = gate.smoke_request(loaded, request, url)
            verdict = (
                "ok: " + smoke_timings(result, loaded.spec.smoke.tool)
                if result.ok
                else f"FAILED: {result.failure}"
                + (f" (hint: {result.hint})" if result.hint else "")
            )
            click.echo(f"smoke {verdict}", err=True)

        threading.Thread(target=check, daemon=True).start()

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # stop as cleanly as on Ctrl-C
    signal.signal(signal.SIGINT, interrupt)

    def progress(step: str) -> None:  # lines, not a spinner: the server's log follows
        click.echo(f"... {step}", err=True)

    try:
        flow.run_foreground(
            loaded,
            environment,
            target,
            overrides(config_flags, option_flags),
            progress,
            port,
            ready,
        )
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@click.command()
@click.argument("directory", required=False, type=FLEET_DIR, metavar="[DIR]")
@click.option("--env", "environment", help="Only this environment (default: every one).")
@json_option
@click.pass_context
def status(
    ctx: click.Context, directory: Path | None, environment: str | None, as_json: bool
) -> None:
    """Show the server's deployments, checked live (the ones found gone are forgotten).

    With DIR: the deployments of every spec under DIR; exit code the worst of them.
    """
    from orchestrator.deploy import observe

    fleet = fleet_directory(ctx, directory)
    if fleet is not None:
        from orchestrator.cli.fleet_commands import status_fleet

        ctx.exit(status_fleet(fleet, environment, as_json))
    loaded = load(ctx)
    report = observe.status(loaded, environment)
    if as_json:
        emit_json({"ok": True, "deployments": status_json(report)})
        return
    render_status(loaded.spec.server.name, report)


def status_json(report: list[Status]) -> list[dict[str, Any]]:
    """The `deployments` of `status --json`."""
    return [
        {
            **vars(entry.deployed),
            "last_smoke": entry.record.status if entry.record else None,
            "drift": entry.drift,
            "record": entry.record.to_dict() if entry.record else None,
        }
        for entry in report
    ]


def render_status(server: str, report: list[Status]) -> None:
    """One line per deployment (or `SERVER: nothing deployed`)."""
    if not report:
        click.echo(f"{server}: nothing deployed")
    for entry in report:
        deployed = entry.deployed
        state = "running" if deployed.running else "gone (stopped outside mcp-deploy; forgotten)"
        proven = f"  smoke {entry.record.status}" if entry.record is not None else ""
        drifted = [what for what, changed in entry.drift.items() if changed]
        drift = f"  drift: {', '.join(drifted)} changed since" if drifted else ""
        click.echo(
            f"{deployed.environment:<10} {deployed.target:<10} {state:<8} {deployed.url}  "
            f"{deployed.artifact_digest[:19]}  since {deployed.since}{proven}{drift}"
        )


@click.command()
@click.option("--target", help="Target (default: the only deployment running in --env).")
@click.option("--env", "environment", default="local", help=ENV_HELP)
@click.option("-n", "--lines", default=40, show_default=True, help="Lines of the log's tail.")
@click.option("-f", "--follow", is_flag=True, help="Then print new lines until it stops.")
@click.pass_context
def logs(
    ctx: click.Context, target: str | None, environment: str, lines: int, follow: bool
) -> None:
    """Print the log of a deployment (Lambda: CloudWatch-style lines)."""
    from orchestrator.deploy import observe

    try:
        for text in observe.logs(load(ctx), environment, target, lines, follow):
            click.echo(text, nl=False)
    except KeyboardInterrupt:
        pass


@click.command()
@click.option("--env", "environment", required=True, help="Environment.")
@click.option("--target", help="Only this target (default: every target).")
@click.option("--yes", is_flag=True, help="Do not ask before destroying cloud resources.")
@json_option
@click.pass_context
def destroy(
    ctx: click.Context, environment: str, target: str | None, yes: bool, as_json: bool
) -> None:
    """Remove the server's deployments in ENV and leave nothing behind.

    For a cloud environment, asked at a terminal first (not with --yes or --json, and never
    when stdin is not a terminal: pipelines are never prompted).
    """
    from orchestrator.deploy import flow

    loaded = load(ctx)
    if not (yes or as_json) and sys.stdin.isatty() and not loaded.spec.is_local(environment):
        what = f"target {target}" if target else "every target"
        question = (
            f"Destroy {loaded.spec.server.name} in '{environment}' ({what}): every cloud "
            "resource its stacks hold, secrets included?"
        )
        if not click.confirm(question, default=False, err=True):
            raise OperationError("nothing was destroyed", hint="pass --yes to skip the question")
    stopped = flow.destroy(loaded, environment, target)
    if as_json:
        emit_json({"ok": True, "stopped": [vars(deployed) for deployed in stopped]})
        return
    if not stopped:
        click.echo(f"nothing was running in '{environment}'")
    for deployed in stopped:
        click.echo(f"stopped {deployed.target} in {deployed.environment} ({deployed.url})")
