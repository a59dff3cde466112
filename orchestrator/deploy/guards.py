"""Guard rails for one deployment: what `plan` and `deploy` should say before they touch a cloud.

`cloud_warnings(spec, environment, target, options)` gives, for one resolved environment and
target, the same warnings `validate` prints for the whole spec (`orchestrator.spec.checks.
spec_warnings`), as plain sentences: the target serves the server without authentication to
anyone on the internet, or the bearer token is read on the deploying machine and copied into
the cloud. The errors (`auth.mode = "none"` without `acknowledge_public`, option combinations a
cloud refuses) are the spec's own checks: a spec that loaded has none.

Imports only the spec layer and `targets.base`; target rules are looked up by target name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.spec.exposure import PUBLIC_CONSEQUENCE, exposure, title

if TYPE_CHECKING:
    from orchestrator.spec.model import ServerSpec
    from targets.base import TargetOptions


def cloud_warnings(
    spec: ServerSpec,
    environment: str,
    target: str,
    options: TargetOptions | Mapping[str, Any],
) -> list[str]:
    """Warnings for deploying to `target` in `environment` with its effective `options` (the
    option model, or its JSON form such as `DeploymentRequest.options`). Empty for a local
    environment and for a deployment that needs no warning. Never raises for a loaded spec."""
    data: Mapping[str, Any] = (
        options if isinstance(options, Mapping) else options.model_dump(mode="json")
    )
    warnings: list[str] = []
    exposed = exposure(spec, environment, target, data)
    if exposed is not None:
        warnings.append(
            f"{title(target)} serves the server without authentication on {exposed.entry} "
            f"in environment '{environment}': {PUBLIC_CONSEQUENCE} ({exposed.hint})"
        )
    return warnings
