"""Cloudflare Workers (a Python Worker)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, field_validator

from targets.base import ArtifactRepository, ArtifactType, LocalRuntime, TargetOptions

if TYPE_CHECKING:
    from orchestrator.artifacts import Artifact
    from orchestrator.build.context import BuildContext

DEFAULT_COMPATIBILITY_DATE = dt.date(2025, 9, 1)


class WorkersOptions(TargetOptions):
    """`[targets.workers]`."""

    cloud_fields: ClassVar[tuple[str, ...]] = ("account_id",)
    build_fields: ClassVar[tuple[str, ...]] = ("compatibility_date", "compatibility_flags")

    account_id: str | None = Field(
        None, pattern=r"^[0-9a-f]{32}$", description="Cloudflare account id (32 hex digits)."
    )
    compatibility_date: dt.date = Field(
        DEFAULT_COMPATIBILITY_DATE, description="Workers runtime compatibility date."
    )
    compatibility_flags: list[str] = Field(
        default_factory=list,
        description="Workers compatibility flags, on top of the one the runtime needs, which "
        "mcp-deploy adds itself: python_workers (Python) or nodejs_compat (Node).",
    )
    workers_dev: bool = Field(True, description="Serve on the account's workers.dev subdomain.")
    routes: list[str] = Field(
        default_factory=list, description="Zone routes such as 'mcp.example.com/*'."
    )
    cpu_ms: int | None = Field(
        None,
        ge=10,
        le=300_000,
        description="CPU time limit per request in milliseconds, up to 300000 (5 minutes; "
        "Workers Paid). Unset: Cloudflare's default (30000 on Paid; Free is fixed at 10).",
    )
    artifact_repository: ArtifactRepository | None = Field(
        None,
        description="OCI repository that 'build --push' publishes the bundle to, as an OCI "
        "artifact (unset: the bundle stays in the local store).",
    )

    @field_validator("compatibility_date")
    @classmethod
    def _not_in_future(cls, value: dt.date) -> dt.date:
        if value > dt.date.today():
            raise ValueError("compatibility_date cannot be in the future")
        return value


# The compatibility flag each runtime's Workers need (stacks/workers.py keeps the same table).
RUNTIME_FLAGS = {"python": "python_workers", "node": "nodejs_compat"}


def effective_flags(options: WorkersOptions, runtime: str) -> list[str]:
    """The options' compatibility flags plus the runtime's own, in the options' order."""
    flags = list(options.compatibility_flags)
    needed = RUNTIME_FLAGS.get(runtime)
    if needed is not None and needed not in flags:
        flags.append(needed)
    return flags


WORKERS_BUNDLE = ArtifactType(
    "workers-bundle", oci_artifact_type="application/vnd.mcp-deploy.workers-bundle.v1"
)


@dataclass(frozen=True)
class WorkersTarget:
    name: str = "workers"
    title: str = "Cloudflare Workers"
    options_model: type[TargetOptions] = WorkersOptions
    supports_iam_auth: bool = False
    runtimes: tuple[str, ...] = ("python", "node")
    # A Python Worker cannot start offline (workerd fetches Pyodide), so its OAuth gate could
    # not be proven here: refused rather than shipped unproven.
    oauth_runtimes: tuple[str, ...] = ("node",)
    artifact_type: ArtifactType = WORKERS_BUNDLE

    def package(self, context: BuildContext, options: TargetOptions) -> Artifact:
        """The Worker bundle: Python (`targets.workers.package`) or JavaScript, for a Node
        server (`targets.workers.package_node`)."""
        assert isinstance(options, WorkersOptions)
        if context.loaded.spec.server.runtime == "node":
            from targets.workers.package_node import package_node_workers

            return package_node_workers(context, options)
        from targets.workers.package import package_workers

        return package_workers(context, options)

    def spreads_requests(self, options: TargetOptions) -> bool:
        """Each request may land in another isolate."""
        return True

    def destination(self, options: TargetOptions, server: str) -> str | None:
        assert isinstance(options, WorkersOptions)
        return options.artifact_repository

    def local_runtime(self) -> LocalRuntime:
        """Local runs: a JS module Worker in workerd from npm (`targets.workers.local`)."""
        from targets.workers import local

        return local


TARGET = WorkersTarget()
