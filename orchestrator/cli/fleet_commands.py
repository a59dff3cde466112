"""`matrix [DIR]`, and `status DIR` / `plan DIR`: every spec under a directory
(`orchestrator.fleet` does the work; this module renders it).

Text: `matrix` prints one line per entry; `status`/`plan` print a `==> SPEC: SERVER` header per
spec followed by that spec's usual output; errors go to stderr as usual. `--json`: one
document for the whole fleet (docs/cli.md). The exit code is the worst of the specs'
(`orchestrator.fleet.worst_exit`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from orchestrator.cli.options import json_option
from orchestrator.cli.render import emit_json

if TYPE_CHECKING:
    from orchestrator.errors import InputError, OperationError
    from orchestrator.fleet import Matrix, SpecRun, TargetPlan

FLEET_DIR = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)


def fleet_directory(ctx: click.Context, directory: Path | None) -> Path | None:
    """DIR of `status`/`plan`, refused with a `--spec` given on the command line (the
    `MCP_DEPLOY_SPEC` variable is ignored when DIR is given)."""
    if directory is None:
        return None
    root = ctx.find_root()
    if root.get_parameter_source("spec") == ParameterSource.COMMANDLINE:
        raise click.UsageError("give a directory or --spec, not both")
    return directory


@click.command()
@click.argument("directory", required=False, default=Path("."), type=FLEET_DIR, metavar="[DIR]")
@click.option("--env", "environment", help="Only this environment.")
@click.option("--target", help="Only this target.")
@click.option(
    "--kind", type=click.Choice(["local", "pulumi"]), help="Only environments of this kind."
)
@click.option(
    "--github",
    is_flag=True,
    help='One line of JSON, {"include": [entries]}, for a GitHub Actions strategy.matrix.',
)
@json_option
@click.pass_context
def matrix(
    ctx: click.Context,
    directory: Path,
    environment: str | None,
    target: str | None,
    kind: str | None,
    github: bool,
    as_json: bool,
) -> None:
    """List server x target x environment for every spec under DIR (default: .).

    Specs are mcp-deploy.toml files and pyproject.toml files with [tool.mcp-deploy], searched
    recursively (not in hidden directories, venv, node_modules, __pycache__, dist, build).
    A spec that does not load is reported and the exit code is 2; the others are listed.
    """
    from orchestrator import fleet

    if github and as_json:
        raise click.UsageError("--github and --json: choose one")
    result = fleet.matrix(directory, environment, target, kind)
    if github:
        include = [entry.to_dict() for entry in result.entries]
        click.echo(json.dumps({"include": include}, separators=(",", ":")))
        _echo_load_errors(result)
    elif as_json:
        emit_json(
            {
                "ok": not result.failed,
                "entries": [entry.to_dict() for entry in result.entries],
                "errors": [
                    {"spec": item.name, **issue.to_dict()}
                    for item in result.failed
                    for issue in (item.error.issues if item.error else [])
                ],
            }
        )
    else:
        _render_matrix(result)
        if not result.entries:
            click.echo("no entries", err=True)
        _echo_load_errors(result)
    ctx.exit(result.exit_code)


def _render_matrix(result: Matrix) -> None:
    from orchestrator.errors import printable

    rows = [
        (
            entry.spec,
            entry.server,
            entry.target,
            entry.environment,
            entry.kind,
            f"from {entry.promote_from}" if entry.promote_from else "",
        )
        for entry in result.entries
    ]
    widths = [max((len(row[column]) for row in rows), default=0) for column in range(5)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo(printable("  ".join([*cells, row[5]]).rstrip()))


def _echo_load_errors(result: Matrix) -> None:
    for item in result.failed:
        if item.error is not None:
            click.echo(item.error.render(), err=True)
    if result.failed:
        click.echo(f"{len(result.failed)} spec(s) did not load", err=True)


def _header(run: SpecRun[Any]) -> None:
    from orchestrator.errors import printable

    what = run.server if run.server is not None else "did not load"
    if run.skipped:
        what += f": skipped ({run.skipped})"
    click.echo(printable(f"==> {run.spec}: {what}"))


def _head(run: SpecRun[Any], exit_code: int) -> dict[str, Any]:
    head: dict[str, Any] = {
        "spec": run.spec,
        "server": run.server,
        "ok": exit_code == 0,
        "exit_code": exit_code,
    }
    if run.skipped:
        head["skipped"] = run.skipped
    return head


def _error_dict(error: InputError | OperationError) -> dict[str, Any]:
    data: dict[str, Any] = error.to_dict()
    data.pop("ok", None)
    return data


def _echo_error(where: str, error: InputError | OperationError) -> None:
    """An error of one spec (or one of its targets) on stderr, after a line naming it."""
    from orchestrator.errors import printable

    click.echo(printable(f"{where}:"), err=True)
    click.echo(error.render(), err=True)


def _summary(runs: list[SpecRun[Any]], codes: list[int], code: int) -> None:
    failed = sum(1 for each in codes if each != 0)
    if failed:
        click.echo(f"{failed} of {len(runs)} specs failed (exit {code})", err=True)


def status_fleet(directory: Path, environment: str | None, as_json: bool) -> int:
    """`status DIR`: every spec's deployments; returns the exit code."""
    from orchestrator import fleet
    from orchestrator.cli.deploy_commands import render_status, status_json

    runs = fleet.status(directory, environment)
    codes = [run.exit_code for run in runs]
    code = fleet.worst_exit(codes)
    if as_json:
        specs: list[dict[str, Any]] = []
        for run in runs:
            item = _head(run, run.exit_code)
            error = run.outcome.error
            if error is not None:
                item.update(_error_dict(error))
            else:
                item["deployments"] = status_json(run.outcome.value or [])
            specs.append(item)
        emit_json({"ok": code == 0, "specs": specs})
        return code
    for run in runs:
        _header(run)
        if run.outcome.error is not None:
            _echo_error(run.spec, run.outcome.error)
        elif not run.skipped:
            render_status(run.server or run.spec, run.outcome.value or [])
    _summary(runs, codes, code)
    return code


def plan_fleet(
    directory: Path, environment: str, target: str | None, offline: bool, as_json: bool
) -> int:
    """`plan DIR`: every spec's plan of `environment` on each of its targets; returns the
    exit code."""
    from orchestrator import fleet
    from orchestrator.cli.render import progress_reporter

    with progress_reporter(enabled=not as_json) as progress:
        runs = fleet.plan(directory, environment, target, offline, progress)
    codes = [fleet.plan_exit(run) for run in runs]
    code = fleet.worst_exit(codes)
    if as_json:
        specs: list[dict[str, Any]] = []
        for run, spec_code in zip(runs, codes, strict=True):
            item = _head(run, spec_code)
            if run.outcome.error is not None:
                item.update(_error_dict(run.outcome.error))
            else:
                item["plans"] = [_target_plan_json(each) for each in run.outcome.value or []]
            specs.append(item)
        emit_json({"ok": code == 0, "environment": environment, "offline": offline, "specs": specs})
        return code
    for run in runs:
        _header(run)
        if run.outcome.error is not None:
            _echo_error(run.spec, run.outcome.error)
        elif run.outcome.value == [] and not run.skipped:
            click.echo(f"  no target to plan in '{environment}'")
        for each in run.outcome.value or []:
            _render_target_plan(run.spec, each)
    _summary(runs, codes, code)
    return code


def _target_plan_json(each: TargetPlan) -> dict[str, Any]:
    from orchestrator.cli.deploy_commands import offline_plan_json, plan_json
    from orchestrator.deploy.flow import Plan

    code = each.outcome.exit_code
    head: dict[str, Any] = {"target": each.target, "ok": code == 0, "exit_code": code}
    value, error = each.outcome.value, each.outcome.error
    if error is not None:
        return {**head, **_error_dict(error)}
    if isinstance(value, Plan):
        body = plan_json(value)
    else:
        assert value is not None  # an attempt without an error has its value
        body = offline_plan_json(value)
    del body["ok"]
    return {**head, **body}


def _render_target_plan(spec: str, each: TargetPlan) -> None:
    from orchestrator.cli.deploy_commands import render_offline, render_plan
    from orchestrator.deploy.flow import Plan

    value, error = each.outcome.value, each.outcome.error
    if error is not None:
        click.echo(f"plan: {each.target}: failed (exit {each.outcome.exit_code})")
        _echo_error(f"{spec} on {each.target}", error)
    elif isinstance(value, Plan):
        render_plan(value)
    elif value is not None:
        render_offline(value)
