"""What a spec leaves open in the clouds: where a target serves the server without
authentication to anyone on the internet, and which cloud environments take their bearer
token from the machine that deploys.

Shared by `validate` (`orchestrator.spec.checks.spec_warnings`, over every environment) and
the deploy flow (`orchestrator.deploy.guards.cloud_warnings`, for the one environment and target
being deployed). A target's options are read as plain data (`model_dump()`), by target name;
a target without a rule here is taken to serve on a public URL (the safe guess).
Nothing here raises for a spec that loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from targets import registry

if TYPE_CHECKING:
    from orchestrator.spec.model import ServerSpec

PUBLIC_CONSEQUENCE = "anyone on the internet who has the URL can call its tools"


@dataclass(frozen=True)
class Exposure:
    """A target that, in one cloud environment, answers anyone without authentication."""

    target: str
    environment: str
    entry: str  # where: "its Function URL (auth type NONE)"
    hint: str  # how to close it


def _cloudrun(options: Mapping[str, Any]) -> tuple[str, str] | None:
    if options.get("ingress", "all") != "all":
        return None  # internal ingress: only the project's VPC (or its load balancers) reach it
    return (
        "its service URL (ingress 'all', run.invoker granted to allUsers)",
        'set auth.mode = "bearer", "oauth" or "iam", or targets.cloudrun.ingress = "internal"',
    )


def _lambda(options: Mapping[str, Any]) -> tuple[str, str] | None:
    return (
        "its Function URL (auth type NONE)",
        'set auth.mode = "bearer", "oauth" or "iam" (the URL then needs AWS_IAM-signed requests)',
    )


def _workers(options: Mapping[str, Any]) -> tuple[str, str] | None:
    places: list[str] = []
    if options.get("workers_dev", True):
        places.append("its workers.dev URL")
    routes = [str(route) for route in options.get("routes") or ()]
    if routes:
        places.append("its routes (" + ", ".join(routes) + ")")
    if not places:
        return None  # no workers.dev URL and no route: nothing on the internet reaches it
    return (
        " and ".join(places),
        'set auth.mode = "bearer" or "oauth" (Workers has no IAM authentication)',
    )


_PUBLIC_ENTRIES: dict[str, Callable[[Mapping[str, Any]], tuple[str, str] | None]] = {
    "cloudrun": _cloudrun,
    "lambda": _lambda,
    "workers": _workers,
}


def title(target: str) -> str:
    """The target's human name ('Google Cloud Run'), or its key when unknown."""
    found = registry().get(target)
    return found.title if found is not None else target


def exposure(
    spec: ServerSpec, environment: str, target: str, options: Mapping[str, Any]
) -> Exposure | None:
    """How `target`, deployed to `environment` with `options` (its effective options as
    data), serves the server to anyone on the internet without authentication; None when it
    does not (auth is not "none", the environment is local, or the target is not reachable)."""
    if spec.auth.mode != "none" or spec.is_local(environment):
        return None
    rule = _PUBLIC_ENTRIES.get(target)
    found = (
        rule(options)
        if rule is not None
        else ("its public URL", 'set auth.mode = "bearer" unless the server is meant to be public')
    )
    if found is None:
        return None
    entry, hint = found
    return Exposure(target=target, environment=environment, entry=entry, hint=hint)
