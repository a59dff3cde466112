"""AWS Lambda behind a Function URL: options (`[targets.lambda]`) and the target."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from targets.base import ArtifactRepository, ArtifactType, LocalRuntime, TargetOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.artifacts import Artifact
    from orchestrator.build.context import BuildContext
    from orchestrator.build.store import ArtifactStore

AwsRegion = Annotated[str, Field(pattern=r"^[a-z]{2}(?:-[a-z]+)+-\d$", examples=["eu-west-1"])]

# A KMS key by key ARN (single- or multi-Region key id) or by alias ARN.
_KMS_KEY_ARN = (
    r"^arn:aws[a-z-]*:kms:([a-z]{2}(?:-[a-z]+)+-\d):\d{12}:"
    r"(?:key/(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|alias/[A-Za-z0-9/_-]{1,250})$"
)


def _customer_managed(arn: str) -> str:
    """An `alias/aws/...` names an AWS managed key, which no IAM grant is needed (or allowed)
    for: only customer managed keys are accepted."""
    if ":alias/aws/" in arn:
        raise ValueError(
            "alias/aws/... names an AWS managed key, which needs no grant: leave "
            "secrets_kms_key unset for secrets encrypted with it"
        )
    return arn


KmsKeyArn = Annotated[
    str,
    Field(
        pattern=_KMS_KEY_ARN,
        examples=[
            "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:eu-west-1:123456789012:alias/mcp-secrets",
        ],
    ),
    AfterValidator(_customer_managed),
]

# General purpose bucket names (S3 User Guide, "Bucket naming rules"): 3-63 characters of
# lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit; the
# rest is checked by `_s3_bucket_name`.
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def _s3_bucket_name(name: str) -> str:
    """The naming rules a pattern cannot say: no `..`, not an IP address, no reserved prefix
    or suffix (access point aliases, directory and table buckets)."""
    if ".." in name:
        raise ValueError("a bucket name has no two adjacent periods")
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        raise ValueError("a bucket name is not formatted as an IP address")
    if name.startswith(_BUCKET_RESERVED_PREFIXES) or name.endswith(_BUCKET_RESERVED_SUFFIXES):
        raise ValueError(
            "a general purpose bucket name does not start with "
            + ", ".join(_BUCKET_RESERVED_PREFIXES)
            + " or end with "
            + ", ".join(_BUCKET_RESERVED_SUFFIXES)
        )
    return name


S3BucketName = Annotated[
    str,
    Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", examples=["acme-lambda-artifacts"]),
    AfterValidator(_s3_bucket_name),
]


class LambdaOptions(TargetOptions):
    """`[targets.lambda]`."""

    cloud_fields: ClassVar[tuple[str, ...]] = ("region",)
    build_fields: ClassVar[tuple[str, ...]] = ("arch", "bytecode_only")

    region: AwsRegion | None = Field(None, description="AWS region to deploy to.")
    memory: int = Field(512, ge=128, le=10240, description="Memory in MB (128-10240).")
    timeout: int = Field(30, ge=1, le=900, description="Invocation timeout in seconds (1-900).")
    arch: Literal["arm64", "x86_64"] = Field("arm64", description="CPU architecture.")
    ephemeral_storage: int = Field(
        512, ge=512, le=10240, description="/tmp size in MB (512-10240)."
    )
    bytecode_only: bool = Field(
        False,
        description="Python servers: ship the vendored dependencies as bytecode only (each .py "
        "that compiles is replaced by its .pyc; the server's own files keep their sources). "
        "Smaller; tracebacks show no source line for frames in dependencies.",
    )
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
    artifact_bucket: S3BucketName | None = Field(
        None,
        description="S3 bucket (name), in the function's region, that deploys upload the zip "
        "to as mcp-deploy/{server}/{sha256}.zip; required for zips over 50 MB. mcp-deploy "
        "does not create it.",
    )
    secrets_kms_key: KmsKeyArn | None = Field(
        None,
        description="ARN (key or alias) of the customer managed KMS key, in the function's "
        "region, that encrypts the referenced aws-sm:// secrets and the ones mcp-deploy "
        "creates; the function may use it (kms:Decrypt) through Secrets Manager only.",
    )
    snap_start: bool = Field(
        False,
        description="Lambda SnapStart on published versions (needs server.python 3.12 or "
        "later; not with provisioned_concurrency or ephemeral_storage over 512).",
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

    @model_validator(mode="after")
    def _snap_start_alone(self) -> LambdaOptions:
        """SnapStart cannot be combined with provisioned concurrency or with more than 512 MB
        of ephemeral storage (AWS rules). Its Python version is the program's check: the
        options cannot see server.python."""
        if self.snap_start and self.provisioned_concurrency > 0:
            raise ValueError(
                "snap_start cannot be combined with provisioned_concurrency "
                f"({self.provisioned_concurrency}): AWS allows one or the other on a version"
            )
        if self.snap_start and self.ephemeral_storage > 512:
            raise ValueError(
                "snap_start allows at most 512 MB of ephemeral_storage "
                f"({self.ephemeral_storage} set)"
            )
        return self

    @model_validator(mode="after")
    def _kms_key_in_region(self) -> LambdaOptions:
        """Secrets Manager uses keys of its own region only."""
        if self.secrets_kms_key is not None and self.region is not None:
            match = re.match(_KMS_KEY_ARN, self.secrets_kms_key)
            if match is not None and match.group(1) != self.region:
                raise ValueError(
                    f"secrets_kms_key is in {match.group(1)}, the function in {self.region}: "
                    "Secrets Manager uses keys of its own region"
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
    runtimes: tuple[str, ...] = ("python", "binary", "node")
    oauth_runtimes: tuple[str, ...] = ("python", "binary", "node")
    artifact_type: ArtifactType = LAMBDA_ZIP

    def package(self, context: BuildContext, options: TargetOptions) -> Artifact:
        """The Lambda zip (see `targets.aws_lambda.package`; a binary server's in
        `targets.aws_lambda.package_binary`)."""
        assert isinstance(options, LambdaOptions)
        if context.loaded.spec.server.runtime == "binary":
            from targets.aws_lambda.package_binary import package_binary_lambda

            return package_binary_lambda(context, options)
        if context.loaded.spec.server.runtime == "node":
            from targets.aws_lambda.package_node import package_node_lambda

            return package_node_lambda(context, options)
        from targets.aws_lambda.package import package_lambda

        return package_lambda(context, options)

    def spreads_requests(self, options: TargetOptions) -> bool:
        """Each request may land in another execution environment."""
        return True

    def destination(self, options: TargetOptions, server: str) -> str | None:
        assert isinstance(options, LambdaOptions)
        return options.artifact_repository

    def carry_artifact(
        self,
        source: TargetOptions,
        destination: TargetOptions,
        server: str,
        digest: str,
        store: ArtifactStore,
        progress: Callable[[str], None],
    ) -> None:
        """A zip deployed through `artifact_bucket`: fetched from the source's bucket into the
        store when the store lacks it (the program reads it there), and copied server-side
        into the destination's bucket when that is another one; both checked against the
        digest as the objects' SHA256 checksum (`orchestrator.objects`)."""
        from orchestrator.build.store import BlobState
        from orchestrator.objects import copy_zip, fetch_zip, zip_key

        assert isinstance(source, LambdaOptions) and isinstance(destination, LambdaOptions)
        key = zip_key(server, digest)
        origin, target = source.artifact_bucket, destination.artifact_bucket
        if origin is not None and store.check_blob(digest) is not BlobState.INTACT:
            progress(f"lambda: fetching s3://{origin}/{key} into the store")
            fetch_zip(origin, key, digest, source.region or "", store)
        if origin is not None and target is not None and origin != target:
            progress(f"lambda: copying s3://{origin}/{key} to s3://{target}")
            copy_zip(origin, target, key, digest, destination.region or "",
                     source_region=source.region)  # fmt: skip

    def local_runtime(self) -> LocalRuntime:
        """Local runs: awslambdaric behind a loopback Runtime API (`targets.aws_lambda.local`)."""
        from targets.aws_lambda import local

        return local


TARGET = LambdaTarget()
