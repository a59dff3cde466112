"""Google Cloud Run (a container image served on $PORT)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from targets.base import ArtifactType, LocalRuntime, TargetOptions

if TYPE_CHECKING:
    from orchestrator.artifacts import Artifact
    from orchestrator.build.context import BuildContext

Platform = Literal["linux/amd64", "linux/arm64"]
_MEMORY = re.compile(r"^(\d+)(Mi|Gi)$")
GcpProject = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
GcpRegion = Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+\d+$", examples=["europe-west1"])]
ImageRepository = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9.-]+(?::\d+)?(?:/[a-z0-9._-]+)+$",
        examples=["europe-west1-docker.pkg.dev/acme-mcp/mcp"],
    ),
]
PinnedImage = Annotated[str, Field(pattern=r"^[^\s@]+@sha256:[0-9a-f]{64}$")]


# Cloud Run's CPU and memory rules for services (cloud.google.com/run/docs/configuring/services/
# cpu and .../memory-limits): a fraction from 0.08 to below 1 (in steps of 0.001), or 1, 2, 4,
# 6 or 8 vCPUs; below 1 vCPU, concurrency must be 1.
WHOLE_CPUS = (1, 2, 4, 6, 8)
MIN_CPU = 0.08
# More than this many MiB of memory needs at least that many vCPUs.
MIN_CPU_FOR_MEMORY: tuple[tuple[int, float], ...] = (
    (24 * 1024, 8),
    (16 * 1024, 6),
    (8 * 1024, 4),
    (4 * 1024, 2),
    (1024, 1),
    (512, 0.5),
)
# This many vCPUs need at least that many MiB of memory.
MIN_MEMORY_FOR_CPU = {4: 2 * 1024, 6: 4 * 1024, 8: 4 * 1024}


def memory_text(mib: int) -> str:
    """'512Mi', '4Gi': MiB as a Cloud Run memory setting."""
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def resource_problems(cpu: float, memory: str, concurrency: int) -> list[str]:
    """Why Cloud Run would refuse `cpu` with `memory` and `concurrency` (empty: it accepts
    them). `cpu` must be an allowed value already (see `CloudRunOptions.cpu`)."""
    problems: list[str] = []
    if cpu < 1 and concurrency != 1:
        problems.append(
            f"cpu = {cpu:g} (below 1) needs concurrency = 1, not {concurrency}: Cloud Run sends "
            "one request at a time to a fractional vCPU; set concurrency = 1, or cpu = 1 or more"
        )
    mib = memory_mib(memory)
    for above, needed in MIN_CPU_FOR_MEMORY:
        if mib > above:
            if cpu < needed:
                problems.append(
                    f"memory = '{memory}' needs cpu = {needed:g} or more (Cloud Run: more than "
                    f"{memory_text(above)} of memory needs at least {needed:g} vCPU), not "
                    f"{cpu:g}; raise cpu or lower memory"
                )
            break
    least = MIN_MEMORY_FOR_CPU.get(int(cpu)) if cpu >= 1 else None
    if least is not None and mib < least:
        problems.append(
            f"cpu = {cpu:g} needs memory = '{memory_text(least)}' or more (Cloud Run's minimum "
            f"for {cpu:g} vCPU), not '{memory}'; raise memory or lower cpu"
        )
    return problems


def memory_mib(value: str) -> int:
    """MiB in a Cloud Run memory setting ('512Mi', '2Gi')."""
    match = _MEMORY.match(value)
    if match is None:
        raise ValueError("memory must look like '512Mi' or '2Gi'")
    amount, unit = int(match.group(1)), match.group(2)
    return amount * 1024 if unit == "Gi" else amount


class CloudRunOptions(TargetOptions):
    """`[targets.cloudrun]`."""

    cloud_fields: ClassVar[tuple[str, ...]] = ("project", "region", "registry")
    build_fields: ClassVar[tuple[str, ...]] = ("base", "platforms", "bytecode_only")

    project: GcpProject | None = Field(None, description="GCP project id.")
    region: GcpRegion | None = Field(None, description="Cloud Run region.")
    registry: ImageRepository | None = Field(
        None, description="Image repository the image is pushed to (no tag, no digest)."
    )
    base: PinnedImage | None = Field(
        None,
        description="Base image with the spec's Python, pinned by digest: "
        "REPOSITORY@sha256:<64 hex digits>. Unset: docker.io/library/python:<server.python>-slim, "
        "pinned by digest in mcp-deploy.lock on the first build.",
    )
    platforms: list[Platform] = Field(
        default_factory=lambda: list[Platform](["linux/amd64"]),
        min_length=1,
        description="Image platforms; two give a multi-architecture image index.",
    )
    bytecode_only: bool = Field(
        False,
        description="Python servers: ship the vendored dependencies as bytecode only (each .py "
        "that compiles is replaced by its .pyc; the server's own files keep their sources). "
        "Smaller; tracebacks show no source line for frames in dependencies.",
    )
    memory: str = Field("512Mi", description="Memory limit, '128Mi' to '32Gi'.")
    cpu: float = Field(
        1,
        ge=MIN_CPU,
        le=8,
        description="vCPUs per instance: 1, 2, 4, 6 or 8, or a fraction from 0.08 to below 1 "
        "(in steps of 0.001; needs concurrency = 1). More memory needs more vCPUs: above 512Mi "
        "0.5, above 1Gi 1, above 4Gi 2, above 8Gi 4, above 16Gi 6, above 24Gi 8; cpu 4 needs "
        "2Gi or more, 6 and 8 need 4Gi or more.",
    )
    concurrency: int = Field(80, ge=1, le=1000, description="Requests per instance.")
    min_instances: int = Field(0, ge=0, le=1000, description="Instances kept warm.")
    max_instances: int = Field(10, ge=1, le=1000, description="Upper bound on instances.")
    timeout: int = Field(300, ge=1, le=3600, description="Request timeout in seconds.")
    ingress: Literal["all", "internal", "internal-and-cloud-load-balancing"] = Field(
        "all", description="Who may reach the service."
    )
    service_account: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.iam\.gserviceaccount\.com$",
        description="Runtime service account email; unset lets the stack create one.",
    )

    @field_validator("memory")
    @classmethod
    def _memory_in_range(cls, value: str) -> str:
        mib = memory_mib(value)
        if not 128 <= mib <= 32 * 1024:
            raise ValueError("memory must be between 128Mi and 32Gi")
        return value

    @field_validator("cpu")
    @classmethod
    def _cpu_allowed(cls, value: float) -> float:
        if value < 1:
            if abs(value * 1000 - round(value * 1000)) > 1e-6:
                raise ValueError(
                    f"cpu below 1 goes in steps of 0.001 (Cloud Run), not {value!r}; "
                    "for example 0.5 or 0.25"
                )
        elif value not in WHOLE_CPUS:
            raise ValueError(
                f"cpu must be 1, 2, 4, 6 or 8 (or a fraction from 0.08 to below 1), not {value:g}"
            )
        return value

    @field_validator("platforms")
    @classmethod
    def _unique_platforms(cls, value: list[Platform]) -> list[Platform]:
        if len(set(value)) != len(value):
            raise ValueError("platforms must not repeat")
        return value

    @model_validator(mode="after")
    def _instances_ordered(self) -> CloudRunOptions:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) exceeds max_instances ({self.max_instances})"
            )
        return self

    @model_validator(mode="after")
    def _resources_fit(self) -> CloudRunOptions:
        problems = resource_problems(self.cpu, self.memory, self.concurrency)
        if problems:
            raise ValueError("; ".join(problems))
        return self


OCI_IMAGE = ArtifactType("oci-image")


@dataclass(frozen=True)
class CloudRunTarget:
    name: str = "cloudrun"
    title: str = "Google Cloud Run"
    options_model: type[TargetOptions] = CloudRunOptions
    supports_iam_auth: bool = True
    runtimes: tuple[str, ...] = ("python", "binary", "node")
    oauth_runtimes: tuple[str, ...] = ("python", "binary", "node")
    artifact_type: ArtifactType = OCI_IMAGE

    def package(self, context: BuildContext, options: TargetOptions) -> Artifact:
        """The OCI image (see `targets.cloudrun.package`; a binary server's in
        `targets.cloudrun.package_binary`)."""
        assert isinstance(options, CloudRunOptions)
        if context.loaded.spec.server.runtime == "binary":
            from targets.cloudrun.package_binary import package_binary_image

            return package_binary_image(context, options)
        if context.loaded.spec.server.runtime == "node":
            from targets.cloudrun.package_node import package_node_image

            return package_node_image(context, options)
        from targets.cloudrun.package import package_image

        return package_image(context, options)

    def spreads_requests(self, options: TargetOptions) -> bool:
        """More than one instance may serve the service."""
        assert isinstance(options, CloudRunOptions)
        return options.max_instances > 1

    def destination(self, options: TargetOptions, server: str) -> str | None:
        assert isinstance(options, CloudRunOptions)
        return f"{options.registry}/{server}" if options.registry else None

    def local_runtime(self) -> LocalRuntime:
        """Local runs: the image in the Docker engine (see `targets.cloudrun.local`)."""
        from targets.cloudrun import local

        return local


TARGET = CloudRunTarget()
