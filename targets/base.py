"""What every target provides, and the base of every target's option model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from orchestrator.artifacts import Artifact
    from orchestrator.build.context import BuildContext


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


@runtime_checkable
class Packager(Protocol):
    """A target that can build its artifact (`mcp-deploy build`)."""

    def package(self, context: BuildContext, options: TargetOptions) -> Artifact:
        """Build the artifact from the spec's top-level options (never an environment's)."""
        ...

    def destination(self, options: TargetOptions, server: str) -> str | None:
        """`registry/repository` that `build --push` publishes to; None when not configured."""
        ...
