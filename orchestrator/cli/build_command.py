"""`build`: the server's artifacts, reproducible, cached, optionally pushed by digest."""

from __future__ import annotations

import click

from orchestrator.cli.options import json_option, load
from orchestrator.cli.render import emit_json


@click.command()
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
@click.option(
    "--update-base",
    is_flag=True,
    help="Resolve the default Cloud Run base image again and rewrite its pin in "
    "mcp-deploy.lock (commit the change).",
)
@json_option
@click.pass_context
def build(ctx: click.Context, target: str, push: bool, update_base: bool, as_json: bool) -> None:
    """Build the server's artifacts: reproducible, with no environment config or secrets."""
    from orchestrator.cli.render import progress_reporter
    from orchestrator.deploy.artifact import build_artifacts

    loaded = load(ctx)
    with progress_reporter(enabled=not as_json) as progress:
        artifacts = build_artifacts(loaded, target, progress, push=push, update_base=update_base)
    if as_json:
        emit_json({"ok": True, "artifacts": [artifact.to_dict() for artifact in artifacts]})
        return
    for artifact in artifacts:
        click.echo(
            f"{artifact.kind:<15} {artifact.digest}  {artifact.size / 2**20:6.1f} MiB  "
            f"{artifact.location or artifact.path}"
        )
