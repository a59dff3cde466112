"""The AWS Lambda program: one request -> a function behind a Function URL.

`program(request, secret_values, *, artifact_path)` (the `stacks.Program` contract) declares,
with an explicit `aws.Provider` in the request's region passed to every resource (no ambient
config), for the name `{server}-{environment}` (at most 49 characters with the spec's limits):
- the log group `/aws/lambda/{name}` (retention: 14 days);
- an execution role trusted by lambda.amazonaws.com, with one inline policy of least privilege:
  logs:CreateLogStream/PutLogEvents on that log group only, secretsmanager:GetSecretValue on the
  declared secrets only (an `aws-sm://` ARN without the 6-character random suffix gets
  `-??????`). kms:Decrypt is never granted: the request names no customer key (yet);
- per `env:`/`file:` secret, a Secrets Manager secret `mcp-deploy/{server}/{env}/{NAME}` and a
  version whose value is `Output.secret(value)`; `aws-sm://` secrets are used where they are;
- the function from the zip (`code_sha256` = base64 of the digest's raw sha256, so the digest is
  Lambda's CodeSha256), published, with `request.config` and `MCP_DEPLOY_SECRET_ARNS` (JSON NAME
  -> ARN, which the shim reads at cold start) as its environment: ARNs, never values;
- the alias `{environment}` on the published version, provisioned concurrency on it when asked,
  and a Function URL on it (AWS_IAM for auth mode `iam`, else NONE with the two permissions a
  public URL needs: lambda:InvokeFunctionUrl and lambda:InvokeFunction via the URL).
Everything that takes tags gets `mcp-deploy:server`, `mcp-deploy:environment`,
`mcp-deploy:digest`. Outputs: `url`, `function_name`, `version`, `alias_arn`, `log_group`.

The only I/O is reading the zip at `artifact_path`: its sha256 must be the request's digest
and it must fit a direct upload (50 MB); S3 upload of larger zips is not done here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import OperationError
from stacks._secrets import check_secret_values

HANDLER = "mcp_deploy_lambda.handler"
SECRET_ARNS_VARIABLE = "MCP_DEPLOY_SECRET_ARNS"
LOG_RETENTION_DAYS = 14
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
MAX_DIRECT_UPLOAD = 50 * 1024 * 1024
MAX_FUNCTION_NAME = 64
MAX_ROLE_NAME = 64
MAX_SECRET_NAME = 512
MAX_ALIAS_NAME = 128
# arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[-XXXXXX]
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:(.+)$")
_RANDOM_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


def program(
    request: DeploymentRequest,
    secret_values: Mapping[str, str],
    /,
    *,
    artifact_path: str,
) -> dict[str, Any]:
    """Declare the resources of `request` (see the module doc); return the stack outputs."""
    code_sha256 = _checked_zip(request, Path(artifact_path))
    region = _region(request)
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
    secret_arns, versions = _secrets(request, secret_values, region, tags, opts)
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
            lambda arns: json.dumps(execution_policy(arns[0], arns[1:]), sort_keys=True)
        ),
        opts=opts,
    )
    options = request.options
    variables: dict[str, pulumi.Input[str]] = dict(sorted(request.config.items()))
    if secret_arns:
        variables[SECRET_ARNS_VARIABLE] = pulumi.Output.all(**secret_arns).apply(
            lambda arns: json.dumps(arns, sort_keys=True)
        )
    reserved = options.get("reserved_concurrency")
    function = aws.lambda_.Function(
        f"{name}-function",
        name=name,
        role=role.arn,
        code=pulumi.FileArchive(artifact_path),
        code_sha256=code_sha256,
        runtime=f"python{request.python}",
        handler=HANDLER,
        architectures=[str(options["arch"])],
        memory_size=int(options["memory"]),
        timeout=int(options["timeout"]),
        ephemeral_storage=aws.lambda_.FunctionEphemeralStorageArgs(
            size=int(options["ephemeral_storage"])
        ),
        reserved_concurrent_executions=None if reserved is None else int(reserved),
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
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
        "url": url.function_url,
        "function_name": function.name,
        "version": function.version,
        "alias_arn": alias.arn,
        "log_group": log_group.name,
    }


TRUST_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def execution_policy(log_group_arn: str, secret_arns: list[str]) -> dict[str, Any]:
    """The function's inline policy: write to its own log group, read its own secrets."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{log_group_arn}:*"],
        }
    ]
    if secret_arns:
        statements.append(
            {
                "Sid": "Secrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": sorted(secret_resource(arn) for arn in secret_arns),
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def secret_resource(arn: str) -> str:
    """The IAM resource for a secret ARN: a partial ARN (no `-XXXXXX` random suffix) matches
    the real one only with `-??????`. A name that itself ends in `-` and six letters or digits
    is taken as complete (AWS documents the same ambiguity); such a grant fails closed."""
    match = _SECRET_ARN.match(arn)
    if match and not _RANDOM_SUFFIX.search(match.group(2)):
        return f"{arn}-??????"
    return arn


def fitted(name: str, limit: int) -> str:
    """`name` if it fits `limit`, else its head and an 8-hex hash of the whole (stable)."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def _secrets(
    request: DeploymentRequest,
    secret_values: Mapping[str, str],
    region: str,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> tuple[dict[str, pulumi.Input[str]], list[pulumi.Resource]]:
    """Secret NAME -> ARN for every declared secret, and the versions that carry the values.

    `env:`/`file:` sources become a Secrets Manager secret each (deleted without a recovery
    window on destroy: its source of truth is the supplied value), `aws-sm://` ones are used
    in place, `gcp-sm://` ones are refused. Values come only from `secret_values`."""
    declared_local = check_secret_values(request, secret_values)
    arns: dict[str, pulumi.Input[str]] = {}
    versions: list[pulumi.Resource] = []
    for secret, ref in sorted(request.secrets.items()):
        if ref.startswith("aws-sm://"):
            arn = ref[len("aws-sm://") :]
            match = _SECRET_ARN.match(arn)
            if match is None or match.group(1) != region:
                raise OperationError(
                    f"secret {secret}: the Secrets Manager ARN must be in the function's "
                    f"region ({region})",
                    hint="replicate the secret to that region and reference the replica",
                )
            arns[secret] = arn
        elif secret in declared_local:
            stored = aws.secretsmanager.Secret(
                f"{request.server}-{request.environment}-secret-{secret}",
                name=fitted(
                    f"mcp-deploy/{request.server}/{request.environment}/{secret}",
                    MAX_SECRET_NAME,
                ),
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
        else:
            scheme = ref.split(":", 1)[0]
            raise OperationError(
                f"secret {secret}: a {scheme} reference cannot reach a Lambda function",
                hint="use env:, file: or aws-sm:// for this environment's Lambda secrets",
            )
    return arns, versions


def _region(request: DeploymentRequest) -> str:
    region = request.options.get("region")
    if not region:
        raise OperationError(
            f"no AWS region for environment {request.environment}",
            hint="set targets.lambda.region in the spec or in the environment",
        )
    return str(region)


def _checked_zip(request: DeploymentRequest, path: Path) -> str:
    """base64 of the zip's raw sha256, after checking it is the request's artifact and that
    it fits a direct upload."""
    size = path.stat().st_size
    if size > MAX_DIRECT_UPLOAD:
        raise OperationError(
            f"the Lambda zip is {size / 2**20:.1f} MB; a direct upload allows at most "
            f"{MAX_DIRECT_UPLOAD // 2**20} MB (zipped)",
            hint="upload through S3 is not supported yet: shrink the package or deploy to "
            "Cloud Run",
        )
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    if f"sha256:{sha.hexdigest()}" != request.artifact.digest:
        raise OperationError(
            f"{path} is not the requested artifact ({request.artifact.digest})",
            hint="the engine must pass the stored zip of the request's digest",
        )
    return base64.b64encode(sha.digest()).decode()
