"""AWS Lambda behind a Function URL: options (`[targets.lambda]`) and the target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from targets.base import ArtifactRepository, ArtifactType, LocalRuntime, TargetOptions

if TYPE_CHECKING:
    from orchestrator.artifacts import Artifact
    from orchestrator.build.context import BuildContext

AwsRegion = Annotated[str, Field(pattern=r"^[a-z]{2}(?:-[a-z]+)+-\d$", examples=["eu-west-1"])]


class LambdaOptions(TargetOptions):
    """`[targets.lambda]`."""

    cloud_fields: ClassVar[tuple[str, ...]] = ("region",)
    build_fields: ClassVar[tuple[str, ...]] = ("arch",)

    region: AwsRegion | None = Field(None, description="AWS region to deploy to.")
    memory: int = Field(512, ge=128, le=10240, description="Memory in MB (128-10240).")
    timeout: int = Field(30, ge=1, le=900, description="Invocation timeout in seconds (1-900).")
    arch: Literal["arm64", "x86_64"] = Field("arm64", description="CPU architecture.")
    ephemeral_storage: int = Field(512, ge=512, le=10240, description="/tmp size in MB.")
    reserved_concurrency: int | None = Field(
        None, ge=0, description="Reserved concurrent executions; unset means unreserved."
    )
    provisioned_concurrency: int = Field(
        0, ge=0, description="Pre-initialised execution environments (0 = none)."
    )
    artifact_repository: ArtifactRepository | None = Field(
        None,
        description="OCI repository that 'build --push' publishes the zip to, as an OCI "
        "artifact (unset: the zip stays in the local store).",
    )

    @model_validator(mode="after")
    def _provisioned_within_reserved(self) -> LambdaOptions:
        reserved = self.reserved_concurrency
        if reserved is not None and self.provisioned_concurrency > reserved:
            raise ValueError(
                "provisioned_concurrency cannot exceed reserved_concurrency "
                f"({self.provisioned_concurrency} > {reserved})"
            )
        return self


LAMBDA_ZIP = ArtifactType(
    "lambda-zip", oci_artifact_type="application/vnd.mcp-deploy.lambda-zip.v1"
)


@dataclass(frozen=True)
class LambdaTarget:
    name: str = "lambda"
    title: str = "AWS Lambda"
    options_model: type[TargetOptions] = LambdaOptions
    supports_iam_auth: bool = True
    artifact_type: ArtifactType = LAMBDA_ZIP

    def package(self, context: BuildContext, options: TargetOptions) -> Artifact:
        """The Lambda zip (see `targets.aws_lambda.package`)."""
        from targets.aws_lambda.package import package_lambda

        assert isinstance(options, LambdaOptions)
        return package_lambda(context, options)

    def spreads_requests(self, options: TargetOptions) -> bool:
        """Each request may land in another execution environment."""
        return True

    def destination(self, options: TargetOptions, server: str) -> str | None:
        assert isinstance(options, LambdaOptions)
        return options.artifact_repository

    def local_runtime(self) -> LocalRuntime:
        """Local runs: awslambdaric behind a loopback Runtime API (`targets.aws_lambda.local`)."""
        from targets.aws_lambda import local

        return local


TARGET = LambdaTarget()
