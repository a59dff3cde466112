"""`plan --offline` as text: one block per resource, its inputs as `key = value` lines."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click

from orchestrator.deploy.engine import OfflinePlan
from orchestrator.deploy.request import DeploymentRequest


def render_offline_plan(request: DeploymentRequest, result: OfflinePlan) -> None:
    """The resources, their inputs (nested ones as dotted keys) and the outputs, as text."""
    artifact = request.artifact
    click.echo(
        f"plan (offline, Pulumi mock runtime): {request.server} to '{request.environment}' "
        f"on {request.target}"
    )
    click.echo(f"  artifact  {artifact.kind} {artifact.digest} ({artifact.size / 2**20:.1f} MiB)")
    if artifact.location:
        click.echo(f"  image     {artifact.location}")
    click.echo(f"  request   {request.request_hash}")
    click.echo(f"  {len(result.resources)} resources:")
    for resource in result.resources:
        click.echo(f"  + {resource.type} {resource.name}")
        for key, value in flattened(resource.inputs):
            click.echo(f"      {key} = {render_value(value)}")
    click.echo("  outputs (cloud-computed values are the mock's stand-ins):")
    for key, value in result.outputs.items():
        click.echo(f"      {key} = {render_value(value)}")


def flattened(inputs: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested mappings as dotted keys (`environment.variables.GREETING`), for text output."""
    pairs: list[tuple[str, Any]] = []
    for key, value in inputs.items():
        if isinstance(value, Mapping) and value:
            pairs += flattened(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


def render_value(value: Any, limit: int = 400) -> str:
    """One line for text output; a long value loses its middle."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if len(text) > limit:
        text = text[: limit // 2] + " … " + text[-limit // 2 :]
    return text
