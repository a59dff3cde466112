"""What the clouds would compute for the resources the programs declare, faked for the mock
runtime (`orchestrator.pulumi.offline`): without them, outputs such as an ARN or a URL resolve
to None and the programs' outputs say nothing.

`computed(type, name, inputs)` returns (resource id, outputs). Fake values are recognisable:
account 123456789012, project acme-mcp, hash abc123xyz.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ACCOUNT = "123456789012"
GCP_PROJECT = "acme-mcp"
RUN_HASH = "abc123xyz"
CLOUDFLARE_SUBDOMAIN = "acme"


def computed(
    typ: str, name: str, inputs: Mapping[str, Any], region: str = "eu-west-1"
) -> tuple[str, dict[str, Any]]:
    """The fake id and outputs (inputs plus what the provider computes) of one resource;
    `region` is its provider's."""
    provider = typ.split(":", 1)[0]
    faker = _FAKERS.get(provider)
    result = faker(typ, name, dict(inputs), region) if faker is not None else None
    if result is None:
        return f"{name}-id", dict(inputs)
    return result


def _aws(
    typ: str, name: str, inputs: dict[str, Any], region: str
) -> tuple[str, dict[str, Any]] | None:
    resource_name = str(inputs.get("name", name))
    arn_prefix = f"arn:aws:{{}}:{region}:{ACCOUNT}"
    computed: dict[str, Any] = {}
    match typ:
        case "aws:cloudwatch/logGroup:LogGroup":
            computed = {"arn": f"{arn_prefix.format('logs')}:log-group:{resource_name}"}
        case "aws:iam/role:Role":
            computed = {"arn": f"arn:aws:iam::{ACCOUNT}:role/{resource_name}"}
        case "aws:secretsmanager/secret:Secret":
            arn = f"{arn_prefix.format('secretsmanager')}:secret:{resource_name}-AbC123"
            return arn, {**inputs, "arn": arn}
        case "aws:secretsmanager/secretVersion:SecretVersion":
            computed = {"versionId": "v-1", "arn": inputs.get("secretId", "")}
        case "aws:lambda/function:Function":
            arn = f"{arn_prefix.format('lambda')}:function:{resource_name}"
            computed = {
                "arn": arn,
                "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/{arn}/invocations",
                "version": "7",
                "qualifiedArn": f"{arn}:7",
                "codeSha256": inputs.get("codeSha256"),
            }
        case "aws:lambda/alias:Alias":
            function = f"{arn_prefix.format('lambda')}:function:{inputs['functionName']}"
            alias = f"{function}:{resource_name}"
            computed = {"arn": alias, "invokeArn": alias}
        case "aws:lambda/functionUrl:FunctionUrl":
            computed = {
                "functionUrl": f"https://abc123.lambda-url.{region}.on.aws/",
                "urlId": "abc123",
            }
        case "aws:s3/bucketObjectv2:BucketObjectv2":
            key = str(inputs.get("key", name))
            computed = {
                "arn": f"arn:aws:s3:::{inputs.get('bucket')}/{key}",
                "etag": "0123456789abcdef0123456789abcdef-4",
                "versionId": "v-1",
            }
        case _:
            return None
    return f"{name}-id", {**inputs, **computed}


def _gcp(
    typ: str, name: str, inputs: dict[str, Any], region: str
) -> tuple[str, dict[str, Any]] | None:
    resource_name = str(inputs.get("name", name))
    match typ:
        case "gcp:serviceaccount/account:Account":
            email = f"{inputs['accountId']}@{GCP_PROJECT}.iam.gserviceaccount.com"
            return f"{name}-id", {
                **inputs,
                "email": email,
                "member": f"serviceAccount:{email}",
                "name": email,
            }
        case "gcp:secretmanager/secret:Secret":
            path = f"projects/{GCP_PROJECT}/secrets/{inputs['secretId']}"
            return path, {**inputs, "name": path}
        case "gcp:secretmanager/secretVersion:SecretVersion":
            version = {"version": "1", "name": f"{inputs.get('secret')}/versions/1"}
            return f"{name}-id", {**inputs, **version}
        case "gcp:cloudrunv2/service:Service":
            uri = f"https://{resource_name}-{RUN_HASH}-ew.a.run.app"
            return f"{name}-id", {**inputs, "uri": uri}
    return None


def _cloudflare(
    typ: str, name: str, inputs: dict[str, Any], region: str
) -> tuple[str, dict[str, Any]] | None:
    match typ:
        case "cloudflare:index/worker:Worker":
            # Cloudflare reports the workers.dev address whether or not it is enabled
            url = f"https://{inputs.get('name', name)}.{CLOUDFLARE_SUBDOMAIN}.workers.dev"
            subdomain = {**dict(inputs.get("subdomain") or {}), "url": url}
            return f"{name}-id", {**inputs, "subdomain": subdomain}
        case "cloudflare:index/workerVersion:WorkerVersion":
            return f"{name}-id", {**inputs, "number": 1}
    return None


_FAKERS = {"aws": _aws, "gcp": _gcp, "cloudflare": _cloudflare}
