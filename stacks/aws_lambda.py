"""The AWS Lambda program: one request -> a function behind a Function URL.

`program(request, secret_values, *, artifact_path)` (the `stacks.Program` contract) declares,
with an explicit `aws.Provider` in the request's region passed to every resource (no ambient
config), for the name `{server}-{environment}` (at most 49 characters with the spec's limits):
- the log group `/aws/lambda/{name}` (retention: 14 days);
- an execution role trusted by lambda.amazonaws.com, with one inline policy of least privilege
  (`stacks._aws_policy`): logs:CreateLogStream/PutLogEvents on that log group only,
  secretsmanager:GetSecretValue on the declared secrets only (an `aws-sm://` ARN without the
  6-character random suffix gets `-??????`) and, when `targets.lambda.secrets_kms_key` names a
  customer managed key and there are secrets, kms:Decrypt on exactly that key with the
  condition kms:ViaService = secretsmanager.{region}.amazonaws.com;
- per `env:`/`file:` secret, a Secrets Manager secret `mcp-deploy/{server}/{env}/{NAME}`
  (encrypted with `secrets_kms_key` when set) and a version whose value is
  `Output.secret(value)`; `aws-sm://` secrets are used where they are;
- when `targets.lambda.artifact_bucket` is set, or the zip is over the 50 MB of a direct
  upload, the S3 object `mcp-deploy/{server}/{sha256 hex}.zip` in that bucket (the bucket is not
  created here; the object is kept on delete, as stacks share it by digest), uploaded with a
  SHA256 checksum, which the function then takes through `s3_bucket`/`s3_key`;
- the function from the zip (`code_sha256` = base64 of the digest's raw sha256, so the digest is
  Lambda's CodeSha256), published, SnapStart on published versions when `snap_start` is set,
  with `request.config` and `MCP_DEPLOY_SECRET_ARNS` (JSON NAME -> ARN, which the shim reads at
  cold start) as its environment: ARNs, never values;
- the alias `{environment}` on the published version, provisioned concurrency on it when asked,
  and a Function URL on it (AWS_IAM for auth mode `iam`, else NONE with the two permissions a
  public URL needs: lambda:InvokeFunctionUrl and lambda:InvokeFunction via the URL).
Everything that takes tags gets `mcp-deploy:server`, `mcp-deploy:environment`,
`mcp-deploy:digest`. Outputs: `url`, `function_name`, `version`, `alias_arn`, `log_group`.

Before anything is declared, the request is checked against Lambda's limits
(`stacks._aws_lambda_limits`), each refusal an `OperationError` naming the option or limit: the
zip's sha256 must be the request's digest, over 50 MB it needs `artifact_bucket`, unzipped it
must fit 250 MB; the environment variables must fit 4 KB; `snap_start` needs Python 3.12 or
later; secrets must be `env:`, `file:` or `aws-sm://` in the function's region; a KMS key must
be in the function's region. The only I/O is reading the zip at `artifact_path`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import OperationError
from stacks._aws_lambda_limits import CheckedZip, check_environment, checked_zip
from stacks._aws_lambda_runtime import lambda_runtime
from stacks._aws_policy import (
    SECRET_ARN,
    TRUST_POLICY,
    KmsKey,
    execution_policy,
    partition,
    secret_resource,
)
from stacks._options import required_option
from stacks._secrets import check_secret_values

__all__ = ["TRUST_POLICY", "execution_policy", "fitted", "program", "secret_resource"]

SECRET_ARNS_VARIABLE = "MCP_DEPLOY_SECRET_ARNS"
LOG_RETENTION_DAYS = 14
SNAP_START_PYTHON = (3, 12)
MAX_FUNCTION_NAME = 64
MAX_ROLE_NAME = 64
MAX_SECRET_NAME = 512
MAX_ALIAS_NAME = 128


def program(
    request: DeploymentRequest,
    secret_values: Mapping[str, str],
    /,
    *,
    artifact_path: str,
) -> dict[str, Any]:
    """Declare the resources of `request` (see the module doc); return the stack outputs."""
    options = request.options
    region = _region(request)
    _check_snap_start(request)
    kms_value = options.get("secrets_kms_key")
    kms_key = None if kms_value is None else KmsKey.parse(str(kms_value), region)
    bucket_value = options.get("artifact_bucket")
    bucket = None if bucket_value is None else str(bucket_value)
    code = checked_zip(request, Path(artifact_path), bucket)
    runtime = lambda_runtime(request, region, str(options["arch"]), has_launcher=code.has_launcher)
    references = _secret_references(request, secret_values, region)
    check_environment(_planned_environment(request, references, region))

    name = fitted(f"{request.server}-{request.environment}", MAX_FUNCTION_NAME)
    tags = {
        "mcp-deploy:server": request.server,
        "mcp-deploy:environment": request.environment,
        "mcp-deploy:digest": request.artifact.digest,
    }
    provider = aws.Provider(f"{name}-aws", region=region)
    opts = pulumi.ResourceOptions(provider=provider)

    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name=f"/aws/lambda/{name}",
        retention_in_days=LOG_RETENTION_DAYS,
        tags=tags,
        opts=opts,
    )
    secret_arns, versions = _secrets(request, secret_values, references, kms_key, tags, opts)
    role = aws.iam.Role(
        f"{name}-role",
        name=fitted(f"{name}-lambda", MAX_ROLE_NAME),
        assume_role_policy=json.dumps(TRUST_POLICY, sort_keys=True),
        tags=tags,
        opts=opts,
    )
    role_policy = aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        name="mcp-deploy",
        policy=pulumi.Output.all(log_group.arn, *secret_arns.values()).apply(
            lambda arns: json.dumps(execution_policy(arns[0], arns[1:], kms_key), sort_keys=True)
        ),
        opts=opts,
    )
    variables: dict[str, pulumi.Input[str]] = dict(sorted(request.config.items()))
    variables.update(runtime.variables)
    if secret_arns:
        variables[SECRET_ARNS_VARIABLE] = pulumi.Output.all(**secret_arns).apply(
            lambda arns: json.dumps(arns, sort_keys=True)
        )
    reserved = options.get("reserved_concurrency")
    code_args = _code(request, artifact_path, code, bucket, name, tags, opts)
    function = aws.lambda_.Function(
        f"{name}-function",
        name=name,
        role=role.arn,
        **code_args,
        code_sha256=code.code_sha256,
        runtime=runtime.runtime,
        handler=runtime.handler,
        layers=list(runtime.layers) or None,
        architectures=[str(options["arch"])],
        memory_size=int(options["memory"]),
        timeout=int(options["timeout"]),
        ephemeral_storage=aws.lambda_.FunctionEphemeralStorageArgs(
            size=int(options["ephemeral_storage"])
        ),
        reserved_concurrent_executions=None if reserved is None else int(reserved),
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
        snap_start=(
            aws.lambda_.FunctionSnapStartArgs(apply_on="PublishedVersions")
            if options.get("snap_start")
            else None
        ),
        publish=True,
        tags=tags,
        # the log group, the policy and each secret's value exist before the first cold start
        opts=pulumi.ResourceOptions(
            provider=provider, depends_on=[log_group, role_policy, *versions]
        ),
    )
    alias = aws.lambda_.Alias(
        f"{name}-alias",
        name=fitted(request.environment, MAX_ALIAS_NAME),
        function_name=function.name,
        function_version=function.version,
        opts=opts,
    )
    provisioned = int(options.get("provisioned_concurrency") or 0)
    if provisioned > 0:
        aws.lambda_.ProvisionedConcurrencyConfig(
            f"{name}-provisioned",
            function_name=function.name,
            qualifier=alias.name,
            provisioned_concurrent_executions=provisioned,
            opts=opts,
        )
    authorization = "AWS_IAM" if request.auth.get("mode") == "iam" else "NONE"
    url = aws.lambda_.FunctionUrl(
        f"{name}-url",
        function_name=function.name,
        qualifier=alias.name,
        authorization_type=authorization,
        opts=opts,
    )
    if authorization == "NONE":
        # since October 2025 a public Function URL needs both statements
        aws.lambda_.Permission(
            f"{name}-public-url",
            action="lambda:InvokeFunctionUrl",
            function=function.name,
            qualifier=alias.name,
            principal="*",
            function_url_auth_type="NONE",
            opts=opts,
        )
        aws.lambda_.Permission(
            f"{name}-public-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            qualifier=alias.name,
            principal="*",
            invoked_via_function_url=True,
            opts=opts,
        )
    return {
        "url": url.function_url.apply(lambda base: base.rstrip("/") + request.mcp_path),
        "function_name": function.name,
        "version": function.version,
        "alias_arn": alias.arn,
        "log_group": log_group.name,
    }


def fitted(name: str, limit: int) -> str:
    """`name` if it fits `limit`, else its head and an 8-hex hash of the whole (stable)."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def artifact_key(request: DeploymentRequest, hexdigest: str) -> str:
    """The S3 key of a zip: by server and digest, so every environment (and every stack) that
    deploys the same zip shares one object."""
    return f"mcp-deploy/{request.server}/{hexdigest}.zip"


def _code(
    request: DeploymentRequest,
    artifact_path: str,
    code: CheckedZip,
    bucket: str | None,
    name: str,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> dict[str, Any]:
    """The function's code arguments: the zip itself, or (with a bucket) the S3 object that
    this declares, uploaded with a SHA256 checksum and kept when a stack lets go of it."""
    if bucket is None:
        return {"code": pulumi.FileArchive(artifact_path)}
    stored = aws.s3.BucketObjectv2(
        f"{name}-code",
        bucket=bucket,
        key=artifact_key(request, code.hexdigest),
        source=pulumi.FileAsset(artifact_path),
        checksum_algorithm="SHA256",
        content_type="application/zip",
        tags=dict(tags),
        # the key is shared by every stack deploying this digest (promotion): none deletes it
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(retain_on_delete=True)),
    )
    return {"s3_bucket": stored.bucket, "s3_key": stored.key}


def _stored_name(request: DeploymentRequest, secret: str) -> str:
    """The Secrets Manager name of a secret the program creates."""
    return fitted(f"mcp-deploy/{request.server}/{request.environment}/{secret}", MAX_SECRET_NAME)


def _secret_references(
    request: DeploymentRequest, secret_values: Mapping[str, str], region: str
) -> dict[str, str | None]:
    """Secret NAME -> the ARN it references (`aws-sm://`, which must be in `region`), or None
    for an `env:`/`file:` secret the program creates (whose value must be in `secret_values`).
    Any other source is refused. Declares nothing."""
    declared_local = check_secret_values(request, secret_values)
    references: dict[str, str | None] = {}
    for secret, ref in sorted(request.secrets.items()):
        if ref.startswith("aws-sm://"):
            arn = ref[len("aws-sm://") :]
            match = SECRET_ARN.match(arn)
            if match is None or match.group(1) != region:
                raise OperationError(
                    f"secret {secret}: the Secrets Manager ARN must be in the function's "
                    f"region ({region})",
                    hint="replicate the secret to that region and reference the replica",
                )
            references[secret] = arn
        elif secret in declared_local:
            references[secret] = None
        else:
            scheme = ref.split(":", 1)[0]
            raise OperationError(
                f"secret {secret}: a {scheme} reference cannot reach a Lambda function",
                hint="use env:, file: or aws-sm:// for this environment's Lambda secrets",
            )
    return references


def _planned_environment(
    request: DeploymentRequest, references: Mapping[str, str | None], region: str
) -> dict[str, str]:
    """The function's environment as it will be, with the ARNs of secrets not yet created
    written at their final length (12-digit account, 6-character random suffix)."""
    variables = dict(request.config)
    if references:
        prefix = f"arn:{partition(region)}:secretsmanager:{region}:{'0' * 12}:secret:"
        arns = {
            secret: arn or f"{prefix}{_stored_name(request, secret)}-XXXXXX"
            for secret, arn in references.items()
        }
        variables[SECRET_ARNS_VARIABLE] = json.dumps(arns, sort_keys=True)
    return variables


def _secrets(
    request: DeploymentRequest,
    secret_values: Mapping[str, str],
    references: Mapping[str, str | None],
    kms_key: KmsKey | None,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> tuple[dict[str, pulumi.Input[str]], list[pulumi.Resource]]:
    """Secret NAME -> ARN for every declared secret, and the versions that carry the values.

    Referenced ARNs are used in place; each `env:`/`file:` secret becomes a Secrets Manager
    secret (encrypted with `kms_key` when one is named; deleted without a recovery window on
    destroy: its source of truth is the supplied value). Values come only from
    `secret_values`."""
    arns: dict[str, pulumi.Input[str]] = {}
    versions: list[pulumi.Resource] = []
    for secret, arn in sorted(references.items()):
        if arn is not None:
            arns[secret] = arn
            continue
        stored = aws.secretsmanager.Secret(
            f"{request.server}-{request.environment}-secret-{secret}",
            name=_stored_name(request, secret),
            kms_key_id=None if kms_key is None else kms_key.arn,
            recovery_window_in_days=0,
            tags=dict(tags),
            opts=opts,
        )
        versions.append(
            aws.secretsmanager.SecretVersion(
                f"{request.server}-{request.environment}-secret-{secret}-value",
                secret_id=stored.id,
                secret_string=pulumi.Output.secret(secret_values[secret]),
                opts=opts,
            )
        )
        arns[secret] = stored.arn
    return arns, versions


def _region(request: DeploymentRequest) -> str:
    return required_option(request, "region", "AWS region")


def _check_snap_start(request: DeploymentRequest) -> None:
    """SnapStart exists for Python 3.12 and later only (the options cannot see
    server.python, so this is the program's check)."""
    if not request.options.get("snap_start"):
        return
    if request.runtime != "python":
        raise OperationError(
            "targets.lambda.snap_start is for Python servers: Lambda has no SnapStart for the "
            f'runtime a runtime = "{request.runtime}" server runs on (OS-only or Node.js)',
            hint="turn targets.lambda.snap_start off",
        )
    try:
        version = tuple(int(part) for part in request.python.split(".")[:2])
    except ValueError:
        version = (0, 0)
    if version < SNAP_START_PYTHON:
        raise OperationError(
            f"targets.lambda.snap_start needs Python 3.12 or later; server.python is "
            f"{request.python}",
            hint='set server.python = "3.12" (or later), or turn targets.lambda.snap_start off '
            "for this environment",
        )
