"""The engine protocol: what deploys a `DeploymentRequest` somewhere, and the registry of
engines by environment kind.

An engine owns where its deployments live (the local engine: processes and containers on this
machine; the Pulumi engine: cloud stacks). The flow (`orchestrator.deploy.flow`) talks to every
engine through this protocol only and knows none by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from orchestrator.errors import input_error

if TYPE_CHECKING:
    from orchestrator.deploy.request import DeploymentRequest
    from orchestrator.paths import ProjectPaths
    from targets.base import TargetOptions

Progress = Callable[[str], None]

# Engine kind -> the module whose `make_engine(paths, **settings)` builds it.
ENGINES: Mapping[str, str] = {
    "local": "orchestrator.local.engine",
    "pulumi": "orchestrator.pulumi.engine",
}


@dataclass(frozen=True)
class Applied:
    """A deployment that runs: its MCP URL and what the engine reports about it (`host` is
    the Host header the platform presents to the server, when known)."""

    url: str
    outputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """One thing `apply` would do: create, replace, update, keep or delete `what`."""

    action: str
    what: str
    detail: str = ""


@dataclass(frozen=True)
class Problem:
    """Why an engine cannot deploy with these options here: the target option at fault (a key
    of `[targets.<name>]`), what is wrong, and how to fix it."""

    option: str
    message: str
    hint: str


@dataclass(frozen=True)
class Deployed:
    """What runs now in (environment, target) according to the engine, checked live."""

    environment: str
    target: str
    url: str
    artifact_digest: str
    request_hash: str
    since: str
    running: bool
    note: str = ""
    host: str = ""  # the Host header the platform presents to the server, when known


class Engine(Protocol):
    """Deploys requests of one environment kind."""

    kind: str
    # True when the engine deploys from a registry (a cloud pulls the image): the flow
    # publishes the artifact to its target's destination first.
    needs_published_artifacts: bool

    def check(
        self,
        environment: str,
        target: str,
        options: TargetOptions,
        secrets: Mapping[str, str],
        runtime: str = "python",
    ) -> list[Problem]:
        """Before anything is built: what stops this deployment (`secrets` are references; an
        engine may raise `InputError` for one it cannot read; `runtime`: `server.runtime`)."""
        ...

    def plan(self, request: DeploymentRequest) -> list[Change]:
        """What `apply(request)` would change, without changing anything."""
        ...

    def apply(self, request: DeploymentRequest, progress: Progress) -> Applied:
        """Make `request` the running deployment of its (environment, target), replacing the
        one before. Raises `OperationError` when it cannot."""
        ...

    def destroy(self, environment: str, target: str) -> Deployed | None:
        """Remove the deployment of (environment, target) and all it left; what it was."""
        ...

    def current(self, environment: str, target: str) -> Deployed | None:
        """The deployment of (environment, target), if the engine knows one (`running` tells
        whether it still runs)."""
        ...

    def forget(self, environment: str, target: str) -> None:
        """Drop the engine's knowledge of a deployment that is gone."""
        ...


@runtime_checkable
class HasLogs(Protocol):
    """An engine that can show a deployment's log."""

    def log_tail(self, environment: str, target: str, lines: int = 40) -> str: ...

    def follow_log(self, environment: str, target: str) -> Iterator[str]: ...


@runtime_checkable
class KeepsRecords(Protocol):
    """An engine that keeps the deployment record where other machines can read it (a cloud
    stack's outputs and tags)."""

    def attach_record(self, record: Mapping[str, Any]) -> None:
        """The record (status `applying`) of the next `apply`, kept with what it deploys."""
        ...

    def keep_status(self, environment: str, target: str, status: str) -> None:
        """The deployment's status after its smoke test (`verified`, `failed`, …)."""
        ...

    def recorded(self, environment: str, target: str) -> dict[str, Any] | None:
        """The record kept with the running deployment (as `attach_record` got it, with the
        status `keep_status` set), for a machine whose own record store lacks it."""
        ...


@dataclass(frozen=True)
class PlannedResource:
    """One resource a deployment would declare: its type, logical name and inputs as shown to
    people (secret values replaced by `[secret]`)."""

    type: str
    name: str
    inputs: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "inputs": self.inputs}


@dataclass(frozen=True)
class OfflinePlan:
    """Every resource a deployment would declare, in order, and the outputs it would have
    (values a cloud computes are stand-ins)."""

    resources: list[PlannedResource]
    outputs: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "resources": [resource.to_dict() for resource in self.resources],
            "outputs": self.outputs,
        }


@runtime_checkable
class PlansOffline(Protocol):
    """An engine that can show what it would deploy without reaching a cloud or reading a
    secret value (`plan --offline`)."""

    def plan_offline(self, request: DeploymentRequest) -> OfflinePlan: ...


@runtime_checkable
class RunsForeground(Protocol):
    """An engine that can run a request attached to the terminal (`mcp-deploy run`)."""

    def run_foreground(self, request: DeploymentRequest, ready: Callable[[str], None]) -> None: ...


def engine_for(kind: str, paths: ProjectPaths, **settings: Any) -> Engine:
    """The engine for environments of `kind`; `InputError` when this version has none."""
    module_name = ENGINES.get(kind)
    if module_name is None:
        raise input_error(
            "--env",
            f"this version of mcp-deploy has no engine for environments of kind '{kind}'",
            f"engines here: {', '.join(ENGINES)}",
        )
    module = importlib.import_module(module_name)
    engine: Engine = module.make_engine(paths, **settings)
    return engine
