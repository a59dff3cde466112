"""The Lambda program under Pulumi's mock runtime: resources, least privilege, no leaks.

The request is the toolbox example's real `DeploymentRequest` for staging on Lambda; the
artifact is a small real zip. Runs offline in well under a second per case.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator.artifacts import Artifact
from orchestrator.deploy.flow import request_for
from orchestrator.deploy.request import DeploymentRequest
from orchestrator.environments import resolve
from orchestrator.errors import OperationError
from orchestrator.spec.loader import load_spec
from stacks import program_for
from tests.conftest import EXAMPLE_SPEC, REPO
from tests.programs.mocks import (
    REGION,
    Registered,
    Run,
    assert_no_leak,
    run,
)

# the mock runtime and pulumi_aws emit ~70 DeprecationWarnings per run
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CANARY = "canary-7f3e9c1d-do-not-leak"
SECRET_VALUES = {"MCP_AUTH_TOKEN": f"{CANARY}-token", "TOOLBOX_API_KEY": f"{CANARY}-key"}


def artifact_zip(tmp_path: Path) -> tuple[Path, Artifact]:
    path = tmp_path / "lambda.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mcp_deploy_lambda.py", "def handler(event, context):\n    return {}\n")
    data = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    artifact = Artifact("lambda-zip", "lambda", digest, len(data), "inputs", path)
    return path, artifact


def example_request(tmp_path: Path, environment: str = "staging") -> tuple[DeploymentRequest, Path]:
    path, artifact = artifact_zip(tmp_path)
    loaded = load_spec(EXAMPLE_SPEC)
    request = request_for(loaded, resolve(loaded, environment, "lambda"), artifact)
    return request, path


def deploy(request: DeploymentRequest, path: Path, values: dict[str, str] | None = None) -> Run:
    program = program_for("lambda")
    chosen = SECRET_VALUES if values is None else values
    return run(lambda: program(request, chosen, artifact_path=str(path)))


def policy(role_policy: Registered) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(role_policy.inputs["policy"])
    return document


def function_of(result: Run) -> dict[str, Any]:
    return result.one("Function").inputs


def test_staging_declares_the_function_behind_a_public_url(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    result = deploy(request, path)

    assert sorted(r.type for r in result.resources) == sorted(
        [
            "pulumi:providers:aws",
            "aws:cloudwatch/logGroup:LogGroup",
            "aws:iam/role:Role",
            "aws:iam/rolePolicy:RolePolicy",
            "aws:secretsmanager/secret:Secret",
            "aws:secretsmanager/secret:Secret",
            "aws:secretsmanager/secretVersion:SecretVersion",
            "aws:secretsmanager/secretVersion:SecretVersion",
            "aws:lambda/function:Function",
            "aws:lambda/alias:Alias",
            "aws:lambda/functionUrl:FunctionUrl",
            "aws:lambda/permission:Permission",
            "aws:lambda/permission:Permission",
        ]
    )
    # one explicit provider in the request's region, passed to every resource
    provider = result.one("aws")
    assert provider.inputs["region"] == REGION
    for resource in result.resources:
        if resource is not provider:
            assert resource.provider is not None
            urn, _, _id = resource.provider.rpartition("::")
            assert urn.endswith(f"pulumi:providers:aws::{provider.name}"), resource.name

    function = function_of(result)
    hexdigest = request.artifact.digest.removeprefix("sha256:")
    assert function["codeSha256"] == base64.b64encode(bytes.fromhex(hexdigest)).decode()
    assert function["code"].path == str(path)
    assert function["name"] == "toolbox-staging"
    assert function["runtime"] == "python3.11"
    assert function["handler"] == "mcp_deploy_lambda.handler"
    assert function["architectures"] == ["x86_64"]
    assert function["memorySize"] == 1024  # staging's override of the spec's 512
    assert function["timeout"] == 30
    assert function["ephemeralStorage"] == {"size": 512}
    assert "reservedConcurrentExecutions" not in function
    assert function["publish"] is True
    variables = function["environment"]["variables"]
    assert variables["GREETING"] == "Hello from staging"
    assert variables["LOG_LEVEL"] == "debug"
    arns = json.loads(variables["MCP_DEPLOY_SECRET_ARNS"])
    secrets = {r.inputs["name"]: r for r in result.of_type("Secret")}
    assert sorted(secrets) == [
        "mcp-deploy/toolbox/staging/MCP_AUTH_TOKEN",
        "mcp-deploy/toolbox/staging/TOOLBOX_API_KEY",
    ]
    assert arns == {
        "MCP_AUTH_TOKEN": secret_arn("mcp-deploy/toolbox/staging/MCP_AUTH_TOKEN-AbC123"),
        "TOOLBOX_API_KEY": secret_arn("mcp-deploy/toolbox/staging/TOOLBOX_API_KEY-AbC123"),
    }
    assert all(r.inputs["recoveryWindowInDays"] == 0 for r in secrets.values())

    log_group = result.one("LogGroup").inputs
    assert log_group["name"] == "/aws/lambda/toolbox-staging"
    assert log_group["retentionInDays"] == 14

    alias = result.one("Alias").inputs
    assert alias == {**alias, "name": "staging", "functionName": "toolbox-staging"}
    assert alias["functionVersion"] == "7"
    assert result.of_type("ProvisionedConcurrencyConfig") == []

    url = result.one("FunctionUrl").inputs
    assert url["authorizationType"] == "NONE"
    assert url["qualifier"] == "staging"
    permissions = sorted(
        (p.inputs for p in result.of_type("Permission")), key=lambda p: str(p["action"])
    )
    assert permissions == [
        {
            "action": "lambda:InvokeFunction",
            "function": "toolbox-staging",
            "qualifier": "staging",
            "principal": "*",
            "invokedViaFunctionUrl": True,
        },
        {
            "action": "lambda:InvokeFunctionUrl",
            "function": "toolbox-staging",
            "qualifier": "staging",
            "principal": "*",
            "functionUrlAuthType": "NONE",
        },
    ]

    tags = {
        "mcp-deploy:server": "toolbox",
        "mcp-deploy:environment": "staging",
        "mcp-deploy:digest": request.artifact.digest,
    }
    for short in ("LogGroup", "Role", "Secret", "Function"):
        for resource in result.of_type(short):
            assert resource.inputs["tags"] == tags, short

    assert result.outputs == {
        "url": f"https://abc123.lambda-url.{REGION}.on.aws/mcp",
        "function_name": "toolbox-staging",
        "version": "7",
        "alias_arn": f"arn:aws:lambda:{REGION}:123456789012:function:toolbox-staging:staging",
        "log_group": "/aws/lambda/toolbox-staging",
    }
    assert result.secret_outputs == set()


def secret_arn(name_with_suffix: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{name_with_suffix}"


def test_execution_role_has_least_privilege(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    result = deploy(request, path)

    trust = json.loads(result.one("Role").inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert result.one("Role").inputs["name"] == "toolbox-staging-lambda"
    role_policy = result.one("RolePolicy")
    assert role_policy.inputs["role"] == "toolbox-staging-role-id"
    assert policy(role_policy) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [
                    f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/toolbox-staging:*"
                ],
            },
            {
                "Sid": "Secrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [
                    secret_arn("mcp-deploy/toolbox/staging/MCP_AUTH_TOKEN-AbC123"),
                    secret_arn("mcp-deploy/toolbox/staging/TOOLBOX_API_KEY-AbC123"),
                ],
            },
        ],
    }


def test_referenced_secrets_are_granted_by_exact_or_suffixed_arn(tmp_path: Path) -> None:
    request, path = example_request(tmp_path, "prod")
    full = secret_arn("other-key-Xy12Zq")
    request = dataclasses.replace(
        request,
        # prod's MCP_AUTH_TOKEN is a gcp-sm reference (see the next test); take both from AWS
        secrets={
            "MCP_AUTH_TOKEN": f"aws-sm://{full}",
            "TOOLBOX_API_KEY": request.secrets["TOOLBOX_API_KEY"],
        },
    )
    result = deploy(request, path, values={})

    assert result.of_type("Secret") == []
    partial = secret_arn("toolbox-api-key")
    [_, secrets] = policy(result.one("RolePolicy"))["Statement"]
    assert secrets["Resource"] == sorted([full, f"{partial}-??????"])
    variables = function_of(result)["environment"]["variables"]
    assert json.loads(variables["MCP_DEPLOY_SECRET_ARNS"]) == {
        "MCP_AUTH_TOKEN": full,
        "TOOLBOX_API_KEY": partial,
    }
    # prod: reserved 10, provisioned 2 on the alias
    assert function_of(result)["reservedConcurrentExecutions"] == 10
    provisioned = result.one("ProvisionedConcurrencyConfig").inputs
    assert provisioned == {
        "functionName": "toolbox-prod",
        "qualifier": "prod",
        "provisionedConcurrentExecutions": 2,
    }


def test_a_gcp_secret_is_refused(tmp_path: Path) -> None:
    request, path = example_request(tmp_path, "prod")
    with pytest.raises(OperationError, match="MCP_AUTH_TOKEN: a gcp-sm reference"):
        deploy(request, path, values={})


def test_a_secret_in_another_region_is_refused(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    elsewhere = "arn:aws:secretsmanager:us-east-1:123456789012:secret:key"
    request = dataclasses.replace(
        request, secrets={**request.secrets, "TOOLBOX_API_KEY": f"aws-sm://{elsewhere}"}
    )
    values = {"MCP_AUTH_TOKEN": "x"}
    with pytest.raises(OperationError, match=r"in the function's region \(eu-west-1\)"):
        deploy(request, path, values)


def test_iam_auth_uses_an_aws_iam_url_and_no_public_permission(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    request = dataclasses.replace(request, auth={"mode": "iam"})
    result = deploy(request, path)

    assert result.one("FunctionUrl").inputs["authorizationType"] == "AWS_IAM"
    assert result.of_type("Permission") == []


def test_oauth_auth_serves_the_url_to_everyone_for_the_server_to_judge(tmp_path: Path) -> None:
    """The Function URL takes no AWS_IAM signature in mode oauth: the 401 challenge and the
    metadata at the well-known URL come from the server, for every path of the URL."""
    request, path = example_request(tmp_path)
    request = dataclasses.replace(
        request, auth={"mode": "oauth", "issuer": "https://idp.example.com"}
    )
    result = deploy(request, path)

    assert result.one("FunctionUrl").inputs["authorizationType"] == "NONE"
    assert len(result.of_type("Permission")) == 2


def test_longest_names_fit_aws_limits(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    server, environment = "s" * 31 + "1", "e" * 15 + "2"  # the spec's maxima: 32 and 16
    request = dataclasses.replace(request, server=server, environment=environment)
    result = deploy(request, path)

    name = f"{server}-{environment}"
    assert len(name) == 49
    function = function_of(result)
    assert function["name"] == name and len(name) <= 64
    role = result.one("Role").inputs["name"]
    assert role == f"{name}-lambda" and len(role) <= 64
    assert result.one("Alias").inputs["name"] == environment
    assert result.one("LogGroup").inputs["name"] == f"/aws/lambda/{name}"
    for secret in result.of_type("Secret"):
        assert len(secret.inputs["name"]) <= 512
    for resource in result.resources:
        if "tags" in resource.inputs:
            assert all(len(value) <= 256 for value in resource.inputs["tags"].values())


def test_fitted_names_stay_unique_and_within_the_limit() -> None:
    from stacks.aws_lambda import fitted

    long_a, long_b = "a" * 70 + "-x", "a" * 70 + "-y"
    assert fitted("short", 64) == "short"
    assert len(fitted(long_a, 64)) == 64
    assert fitted(long_a, 64) != fitted(long_b, 64)
    assert fitted(long_a, 64) == fitted(long_a, 64)


def test_secret_values_never_reach_a_plain_input_or_output(tmp_path: Path) -> None:
    """Canary leak detector. The mock monitor hands `new_resource` the inputs with Pulumi's
    secret markers kept (values from `Output.secret` arrive wrapped), so a canary found
    outside a marker is a plaintext leak into state; the positive control shows the detector
    sees the values where they belong."""
    request, path = example_request(tmp_path)
    result = deploy(request, path)

    assert_no_leak(
        result, request, CANARY, SECRET_VALUES, "aws:secretsmanager/secretVersion:SecretVersion"
    )


def test_the_zip_must_be_the_requested_artifact(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(OperationError, match="is not the requested artifact"):
        deploy(request, path)


def test_zips_over_the_direct_upload_limit_are_refused(tmp_path: Path) -> None:
    request, _ = example_request(tmp_path)
    big = tmp_path / "big.zip"
    with big.open("wb") as stream:
        stream.truncate(50 * 1024 * 1024 + 1)  # sparse: no 50 MB written
    with pytest.raises(OperationError, match="at most 50 MB"):
        deploy(request, big)


def test_secret_values_must_match_the_declared_sources(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    with pytest.raises(OperationError, match="missing: TOOLBOX_API_KEY; not declared as"):
        deploy(request, path, {"MCP_AUTH_TOKEN": "x", "OTHER": "y"})


def test_unknown_target_has_no_program() -> None:
    with pytest.raises(KeyError, match="no Pulumi program for target 'nowhere'"):
        program_for("nowhere")


def test_the_registry_imports_no_provider_sdk_until_asked() -> None:
    code = (
        "import json, sys, stacks; names = stacks.program_names(); print(json.dumps([names, "
        "sorted(m for m in sys.modules if m.split('.')[0].startswith('pulumi'))]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    names, loaded = json.loads(proc.stdout)
    assert "lambda" in names
    assert loaded == []


# --- customer KMS key, S3 upload, SnapStart, Lambda's limits ---

KEY_ARN = f"arn:aws:kms:{REGION}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALIAS_ARN = f"arn:aws:kms:{REGION}:123456789012:alias/mcp-secrets"
BUCKET = "acme-lambda-artifacts"
VIA_SECRETS_MANAGER = {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}


def with_options(request: DeploymentRequest, **options: Any) -> DeploymentRequest:
    return dataclasses.replace(request, options={**request.options, **options})


def statements(result: Run) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in policy(result.one("RolePolicy"))["Statement"]}


def test_new_options_reach_the_request_with_their_defaults(tmp_path: Path) -> None:
    request, _ = example_request(tmp_path)
    assert request.options["artifact_bucket"] is None
    assert request.options["secrets_kms_key"] is None
    assert request.options["snap_start"] is False


def test_without_a_customer_key_nothing_may_decrypt(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    result = deploy(request, path)

    assert sorted(statements(result)) == ["Logs", "Secrets"]
    assert all("kmsKeyId" not in s.inputs for s in result.of_type("Secret"))


def test_a_customer_key_is_granted_through_secrets_manager_only(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    result = deploy(with_options(request, secrets_kms_key=KEY_ARN), path)

    granted = statements(result)
    assert granted["SecretsKey"] == {
        "Sid": "SecretsKey",
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": [KEY_ARN],
        "Condition": VIA_SECRETS_MANAGER,
    }
    assert sorted(granted) == ["Logs", "Secrets", "SecretsKey"]
    secrets = result.of_type("Secret")
    assert len(secrets) == 2
    assert all(s.inputs["kmsKeyId"] == KEY_ARN for s in secrets)


def test_a_key_named_by_alias_is_granted_by_that_alias(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    result = deploy(with_options(request, secrets_kms_key=ALIAS_ARN), path)

    key = statements(result)["SecretsKey"]
    # IAM matches a key by its key ARN only: an alias ARN as Resource would match nothing
    assert key["Resource"] == [f"arn:aws:kms:{REGION}:123456789012:key/*"]
    assert key["Condition"] == {
        **VIA_SECRETS_MANAGER,
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/mcp-secrets"},
    }
    assert all(s.inputs["kmsKeyId"] == ALIAS_ARN for s in result.of_type("Secret"))


def test_a_key_with_no_secrets_to_decrypt_is_not_granted(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    request = dataclasses.replace(with_options(request, secrets_kms_key=KEY_ARN), secrets={})
    result = deploy(request, path, values={})

    assert sorted(statements(result)) == ["Logs"]


def test_a_key_in_another_region_is_refused(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    elsewhere = KEY_ARN.replace(REGION, "us-east-1")
    with pytest.raises(OperationError, match="secrets_kms_key is in us-east-1") as caught:
        deploy(with_options(request, secrets_kms_key=elsewhere), path)
    assert caught.value.hint and "region" in caught.value.hint


def test_with_a_bucket_the_zip_goes_through_s3_keyed_by_digest(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    result = deploy(with_options(request, artifact_bucket=BUCKET), path)

    hexdigest = request.artifact.digest.removeprefix("sha256:")
    stored = result.one("BucketObjectv2")
    assert stored.inputs["bucket"] == BUCKET
    assert stored.inputs["key"] == f"mcp-deploy/toolbox/{hexdigest}.zip"
    assert stored.inputs["source"].path == str(path)
    assert stored.inputs["checksumAlgorithm"] == "SHA256"
    assert stored.inputs["tags"] == {
        "mcp-deploy:server": "toolbox",
        "mcp-deploy:environment": "staging",
        "mcp-deploy:digest": request.artifact.digest,
    }
    assert stored.provider is not None
    assert "pulumi:providers:aws::toolbox-staging-aws" in stored.provider

    function = function_of(result)
    assert "code" not in function
    assert function["s3Bucket"] == BUCKET
    assert function["s3Key"] == stored.inputs["key"]
    assert function["codeSha256"] == base64.b64encode(bytes.fromhex(hexdigest)).decode()


def test_without_a_bucket_there_is_no_s3_object(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    result = deploy(request, path)

    assert result.of_type("BucketObjectv2") == []
    assert "s3Bucket" not in function_of(result)


def test_the_s3_object_outlives_the_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every stack deploying a digest (an environment and those promoted from it) declares the
    same key: none of them may delete it."""
    import pulumi_aws as aws

    seen: list[Any] = []
    original = aws.s3.BucketObjectv2

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("opts"))
        return original(*args, **kwargs)

    monkeypatch.setattr(aws.s3, "BucketObjectv2", spy)
    request, path = example_request(tmp_path)
    deploy(with_options(request, artifact_bucket=BUCKET), path)

    [opts] = seen
    assert opts.retain_on_delete is True
    assert opts.provider is not None


def test_a_zip_over_the_direct_upload_limit_needs_a_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("stacks._aws_lambda_limits.MAX_DIRECT_UPLOAD", 64)
    request, path = example_request(tmp_path)
    assert path.stat().st_size > 64
    refusal = r"targets\.lambda\.artifact_bucket is not set"
    with pytest.raises(OperationError, match=refusal) as caught:
        deploy(request, path)
    assert caught.value.hint and "artifact_bucket" in caught.value.hint

    result = deploy(with_options(request, artifact_bucket=BUCKET), path)
    assert function_of(result)["s3Bucket"] == BUCKET


def test_a_zip_over_the_unzipped_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request, path = example_request(tmp_path)
    unzipped = sum(info.file_size for info in zipfile.ZipFile(path).infolist())
    monkeypatch.setattr("stacks._aws_lambda_limits.MAX_UNZIPPED", unzipped - 1)
    with pytest.raises(OperationError, match="at most 0 MB unzipped"):
        deploy(with_options(request, artifact_bucket=BUCKET), path)

    monkeypatch.setattr("stacks._aws_lambda_limits.MAX_UNZIPPED", unzipped)
    deploy(request, path)  # exactly at the limit: fits


def test_an_artifact_that_is_no_zip_is_refused(tmp_path: Path) -> None:
    request, _ = example_request(tmp_path)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip at all")
    digest = "sha256:" + hashlib.sha256(broken.read_bytes()).hexdigest()
    request = dataclasses.replace(
        request, artifact=dataclasses.replace(request.artifact, digest=digest)
    )
    with pytest.raises(OperationError, match="is not a readable zip"):
        deploy(request, broken)


def test_snap_start_on_python_3_12_applies_to_published_versions(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    request = dataclasses.replace(with_options(request, snap_start=True), python="3.12")
    result = deploy(request, path)

    function = function_of(result)
    assert function["snapStart"] == {"applyOn": "PublishedVersions"}
    assert function["runtime"] == "python3.12"
    assert function["publish"] is True
    assert result.one("Alias").inputs["functionVersion"] == "7"  # SnapStart needs a version


def test_snap_start_is_off_unless_asked(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    assert "snapStart" not in function_of(deploy(request, path))


def test_snap_start_on_python_3_11_is_refused(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    assert request.python == "3.11"
    with pytest.raises(OperationError) as caught:
        deploy(with_options(request, snap_start=True), path)
    assert "targets.lambda.snap_start" in caught.value.message
    assert "server.python is 3.11" in caught.value.message
    assert caught.value.hint and "3.12" in caught.value.hint


def test_environment_over_4_kb_is_refused_naming_the_biggest(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    request = dataclasses.replace(request, config={**request.config, "BIG": "x" * 4000})
    with pytest.raises(OperationError) as caught:
        deploy(request, path)
    message = caught.value.message
    assert "at most 4096 bytes (4 KB)" in message
    assert "Biggest: BIG (4008 bytes), MCP_DEPLOY_SECRET_ARNS" in message
    assert "x" * 10 not in message  # sizes, never values


def test_the_environment_estimate_is_the_real_size(tmp_path: Path) -> None:
    """The check runs before the secrets exist; its ARNs have their final length, so it
    measures what Lambda will measure."""
    from stacks._aws_lambda_limits import environment_size
    from stacks.aws_lambda import _planned_environment, _secret_references

    request, path = example_request(tmp_path)
    real = function_of(deploy(request, path))["environment"]["variables"]
    planned = _planned_environment(
        request, _secret_references(request, SECRET_VALUES, REGION), REGION
    )
    assert sorted(planned) == sorted(real)
    assert environment_size(planned) == environment_size(real)


def test_environment_at_exactly_4_kb_is_accepted(tmp_path: Path) -> None:
    from stacks._aws_lambda_limits import MAX_ENVIRONMENT, environment_size
    from stacks.aws_lambda import _planned_environment, _secret_references

    request, path = example_request(tmp_path)
    references = _secret_references(request, SECRET_VALUES, REGION)
    padding = {**request.config, "PAD": ""}
    used = environment_size(
        _planned_environment(dataclasses.replace(request, config=padding), references, REGION)
    )
    fitting = dataclasses.replace(
        request, config={**request.config, "PAD": "p" * (MAX_ENVIRONMENT - used)}
    )
    deploy(fitting, path)
    over = dataclasses.replace(
        request, config={**request.config, "PAD": "p" * (MAX_ENVIRONMENT - used + 1)}
    )
    with pytest.raises(OperationError, match="take 4097 bytes"):
        deploy(over, path)


VARIANTS: dict[str, dict[str, Any]] = {
    "customer key": {"secrets_kms_key": KEY_ARN},
    "customer key by alias": {"secrets_kms_key": ALIAS_ARN},
    "through s3": {"artifact_bucket": BUCKET},
    "snap start": {"snap_start": True},
    "everything": {"secrets_kms_key": KEY_ARN, "artifact_bucket": BUCKET, "snap_start": True},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_variant_leaks_a_secret_value(tmp_path: Path, variant: str) -> None:
    request, path = example_request(tmp_path)
    request = dataclasses.replace(with_options(request, **VARIANTS[variant]), python="3.12")
    result = deploy(request, path)

    assert_no_leak(
        result, request, CANARY, SECRET_VALUES, "aws:secretsmanager/secretVersion:SecretVersion"
    )
