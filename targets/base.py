"""What every target provides, and the base of every target's option model."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from orchestrator.artifacts import Artifact
    from orchestrator.build.context import BuildContext
    from orchestrator.build.store import ArtifactStore


ArtifactRepository = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9.-]+(?::\d+)?(?:/[a-z0-9._-]+)+$",
        examples=["123456789012.dkr.ecr.eu-west-1.amazonaws.com/mcp-artifacts"],
    ),
]


class TargetOptions(BaseModel):
    """A target's options (`[targets.<name>]`). Unknown keys are rejected; values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Options that must be set before this target can deploy to any environment but `local`.
    cloud_fields: ClassVar[tuple[str, ...]] = ()
    # Options that shape the artifact itself: set once at the top level, never per environment,
    # because every environment receives the same artifact.
    build_fields: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class ArtifactType:
    """What a target's artifact is: its kind (the store's and the records' name for it) and,
    for a file artifact, the OCI `artifactType` and layer media type `build --push` gives it
    (None for an OCI image, which is pushed as built)."""

    kind: str
    oci_artifact_type: str | None = None
    oci_layer_media_type: str = "application/zip"


class Target(Protocol):
    """One deployment target. Adding a target = one module in targets/ defining `TARGET`."""

    @property
    def name(self) -> str:
        """The key used in the spec (`[targets.<name>]`) and on the command line."""
        ...

    @property
    def title(self) -> str:
        """Human name, e.g. 'AWS Lambda'."""
        ...

    @property
    def options_model(self) -> type[TargetOptions]:
        """The pydantic model of `[targets.<name>]`, with this target's defaults."""
        ...

    @property
    def supports_iam_auth(self) -> bool:
        """True when the platform can check callers with its own IAM (`auth.mode = "iam"`)."""
        ...

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The `server.runtime` values this target runs ("python", "binary")."""
        ...

    @property
    def oauth_runtimes(self) -> tuple[str, ...]:
        """The runtimes whose shim on this target can be an OAuth resource server
        (`auth.mode = "oauth"`)."""
        ...

    @property
    def artifact_type(self) -> ArtifactType:
        """The kind of artifact this target deploys."""
        ...

    def spreads_requests(self, options: TargetOptions) -> bool:
        """True when the platform may send one client's requests to different instances (so
        a server that keeps MCP sessions in memory loses them)."""
        ...


@runtime_checkable
class Packager(Protocol):
    """A target that can build its artifact (`mcp-deploy build`)."""

    def package(self, context: BuildContext, options: TargetOptions) -> Artifact:
        """Build the artifact from the spec's top-level options (never an environment's)."""
        ...

    def destination(self, options: TargetOptions, server: str) -> str | None:
        """`registry/repository` that `build --push` publishes to; None when not configured."""
        ...


@runtime_checkable
class CarriesArtifacts(Protocol):
    """A target whose cloud environments take the artifact from a store of their own (an
    artifact bucket), not from the local store or a registry: promotion asks it to carry the
    artifact there."""

    def carry_artifact(
        self,
        source: TargetOptions,
        destination: TargetOptions,
        server: str,
        digest: str,
        store: ArtifactStore,
        progress: Callable[[str], None],
    ) -> None:
        """Make artifact `digest`, deployed with `source` options, available to a deployment
        with `destination` options: into the local `store` (verified) when it lacks it, and
        into the destination's own store. `OperationError` when it cannot."""
        ...


@dataclass(frozen=True)
class LocalLaunch:
    """Everything a target needs to run its artifact on this machine.

    `runtime` is `server.runtime` ("python", with `python` its minor; "binary": a Linux
    executable behind mcp-deploy's launcher; "node", with `runtime_version` its major).
    `variables` are the environment's config (plain env vars); `secrets` holds secret *values*
    keyed by env var name: a runner hands them to the server through its platform's secret path
    and never writes them to disk, a log, a command line or its handle. `state_dir` is the
    deployment's own directory (logs). `port` 0 lets the runner pick a free port.
    """

    server: str
    environment: str
    python: str
    artifact: Artifact
    options: TargetOptions
    mcp_path: str
    variables: Mapping[str, str]
    secrets: Mapping[str, str] = field(repr=False)
    state_dir: Path
    port: int = 0
    runtime: str = "python"
    runtime_version: str = ""


@dataclass(frozen=True)
class LocalHandle:
    """A running local deployment: its URL and the target's own JSON-ready data to find it
    again from another process (a pid, a container id). Holds no secret."""

    url: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class LocalProblem:
    """Why this machine cannot run the artifact built with these options: the option at fault
    (a key of the target's table), what is wrong, and how to fix it."""

    option: str
    message: str
    hint: str


class LocalRuntime(Protocol):
    """How a target's artifact runs on this machine in an emulation of its platform: the
    contract of a target's `local` module (the one place it is written down)."""

    def problem(self, options: TargetOptions, runtime: str = "python") -> LocalProblem | None:
        """Why the artifact of a `runtime` server built with `options` cannot run on this
        machine, if it cannot (checked before anything is built)."""
        ...

    def start_background(self, launch: LocalLaunch) -> LocalHandle:
        """Start in the background; return once the server accepts connections. Raises
        `OperationError` (with the log tail) when it does not start."""
        ...

    def run_foreground(self, launch: LocalLaunch, ready: Callable[[str], None]) -> None:
        """Run attached to the terminal, logs to stderr; call `ready(url)` once it accepts
        connections; stop cleanly on KeyboardInterrupt."""
        ...

    def alive(self, handle: LocalHandle) -> bool:
        """True while the deployment behind `handle` still runs."""
        ...

    def stop(self, handle: LocalHandle) -> None:
        """Stop gracefully (SIGTERM, then the platform's grace period) and leave nothing behind."""
        ...

    def log_tail(self, handle: LocalHandle, lines: int = 40) -> str:
        """The last `lines` lines of the deployment's log ('' when there is none)."""
        ...

    def follow_log(self, handle: LocalHandle) -> Iterator[str]:
        """The log's new text as it is written; ends when the deployment stops."""
        ...

    def find(self, state_dir: Path, mcp_path: str) -> list[LocalHandle]:
        """Whatever runs for the deployment whose files live in `state_dir` (the launch's
        `state_dir`), found from the processes or containers themselves, without any state
        file: how a deployment whose state was lost is still seen, and stopped."""
        ...


@runtime_checkable
class RunsLocally(Protocol):
    """A target whose artifact can run on this machine (`kind = "local"` environments)."""

    def local_runtime(self) -> LocalRuntime:
        """The target's `local` module, imported only when a local run needs it (target
        modules must stay cheap to import)."""
        ...


def host_architecture() -> str:
    """This machine's CPU as Lambda and OCI name it: `x86_64`/`amd64` or `arm64`."""
    import platform

    return "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"
