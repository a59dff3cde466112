"""`promote`, `rollback` and `history`: thin wrappers over `orchestrator.deploy.promote` and
`orchestrator.deploy.history`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from orchestrator.cli.options import json_option, layer_options, load, overrides
from orchestrator.cli.render import emit_json
from orchestrator.cli.smoke_command import smoke_timings

if TYPE_CHECKING:
    from orchestrator.deploy.release import Outcome
    from orchestrator.spec.loader import LoadedSpec

NO_ROLLBACK_HELP = "When the smoke test fails, leave the new deployment running (exit 4)."


def render_outcome(loaded: LoadedSpec, outcome: Outcome, verb: str) -> None:
    """A finished release as text: where it runs, what it runs, how its smoke test went."""
    record = outcome.record
    came = f" from {record.promoted_from}" if record.promoted_from else ""
    click.echo(
        f"{verb} {record.server}{came} to {record.environment} on {record.target}: {record.url}"
    )
    click.echo(f"  artifact  {record.artifact_kind} {record.artifact_digest}")
    click.echo(f"  smoke     ok: {smoke_timings(outcome.smoke, loaded.spec.smoke.tool)}")
    click.echo(f"  record    {record.id}")
    for warning in outcome.warnings:
        click.echo(f"  warning   {warning}", err=True)


@click.command()
@click.option("--from", "source", required=True, help="Environment whose passing artifact goes.")
@click.option("--to", "destination", required=True, help="Environment that receives it.")
@click.option("--target", help="Only this target (default: every target that passed in --from).")
@click.option("--no-rollback", is_flag=True, help=NO_ROLLBACK_HELP)
@layer_options
@json_option
@click.pass_context
def promote(
    ctx: click.Context,
    source: str,
    destination: str,
    target: str | None,
    no_rollback: bool,
    config_flags: list[tuple[str, str]],
    option_flags: list[tuple[str, str]],
    as_json: bool,
) -> None:
    """Deploy the artifact that passed in --from to --to, by digest, never rebuilt.

    The newest record of --from whose smoke test passed names the artifact; --to's config,
    secrets and engine deploy it (a registry copy by digest when --to pulls from another
    registry), its smoke test gates it, and a failure rolls --to back (exit 3; 4 when nothing
    could be restored). Refused (exit 2) when --from has no passing record, or --to declares
    promote_from another environment.
    """
    from orchestrator.cli.render import progress_reporter
    from orchestrator.deploy.promote import promote as run_promote

    loaded = load(ctx)
    with progress_reporter(enabled=not as_json) as progress:
        outcomes = run_promote(
            loaded,
            source,
            destination,
            target,
            overrides(config_flags, option_flags),
            progress,
            rollback=not no_rollback,
        )
    if as_json:
        emit_json(
            {
                "ok": True,
                "records": [outcome.record.to_dict() for outcome in outcomes],
                "warnings": [w for outcome in outcomes for w in outcome.warnings],
            }
        )
        return
    for outcome in outcomes:
        render_outcome(loaded, outcome, "promoted")


@click.command()
@click.option("--env", "environment", required=True, help="Environment to roll back.")
@click.option("--target", help="Target (default: the only one with records in --env).")
@click.option("--to", "to", help="Record id (or a unique prefix; see history).")
@json_option
@click.pass_context
def rollback(
    ctx: click.Context, environment: str, target: str | None, to: str | None, as_json: bool
) -> None:
    """Deploy an earlier record again: --to, or the newest earlier one that passed.

    The record's own request (artifact by digest, its config, its secret references) goes
    through the environment's engine and the smoke test; if that fails, what ran before is
    restored (exit 3).
    """
    from orchestrator.cli.render import progress_reporter
    from orchestrator.deploy.history import rollback as run_rollback

    loaded = load(ctx)
    with progress_reporter(enabled=not as_json) as progress:
        outcome = run_rollback(loaded, environment, target, to, progress)
    if as_json:
        emit_json({"ok": True, "record": outcome.record.to_dict(), "warnings": outcome.warnings})
        return
    render_outcome(loaded, outcome, "rolled back")


@click.command()
@click.option("--env", "environment", help="Only this environment.")
@click.option("--target", help="Only this target.")
@click.option("-n", "--limit", type=click.IntRange(1), default=20, show_default=True)
@json_option
@click.pass_context
def history(
    ctx: click.Context, environment: str | None, target: str | None, limit: int, as_json: bool
) -> None:
    """List the deployment records, newest first."""
    from orchestrator.deploy.history import history as read_history

    records = read_history(load(ctx), environment, target)[:limit]
    if as_json:
        emit_json({"ok": True, "records": [record.to_dict() for record in records]})
        return
    if not records:
        click.echo("no deployments recorded")
    for record in records:
        came = f" from {record.promoted_from}" if record.promoted_from else ""
        click.echo(
            f"{record.id}  {record.environment:<10} {record.target:<9} "
            f"{record.action or 'deploy'}{came:<14} {record.status:<10} "
            f"{record.artifact_digest[:19]}  {record.actor}"
        )
