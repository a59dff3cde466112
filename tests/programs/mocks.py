"""Pulumi's mock runtime for program tests: records every resource and fakes AWS outputs.

`run(program, ...)` sets fresh mocks, runs the program under `pulumi.runtime.test`, and returns
what was registered (type, name, inputs with Pulumi's secret markers kept) and the resolved
outputs with their secretness.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc

ACCOUNT = "123456789012"
REGION = "eu-west-1"
GCP_PROJECT = "acme-mcp"
RUN_HASH = "abc123xyz"


@dataclass(frozen=True)
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    provider: str | None


class Mocks(pulumi.runtime.Mocks):
    """Computed outputs for the AWS resources the programs declare, so none is None/unknown."""

    def __init__(self) -> None:
        self.resources: list[Registered] = []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[Any, Any]]:
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs), args.provider))
        inputs = dict(args.inputs)
        name = str(inputs.get("name", args.name))
        computed: dict[str, Any] = {}
        arn_prefix = f"arn:aws:{{}}:{REGION}:{ACCOUNT}"
        match args.typ:
            case "aws:cloudwatch/logGroup:LogGroup":
                computed = {"arn": f"{arn_prefix.format('logs')}:log-group:{name}"}
            case "aws:iam/role:Role":
                computed = {"arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}
            case "aws:secretsmanager/secret:Secret":
                arn = f"{arn_prefix.format('secretsmanager')}:secret:{name}-AbC123"
                computed = {"arn": arn}
                return arn, {**inputs, **computed}
            case "aws:secretsmanager/secretVersion:SecretVersion":
                computed = {"versionId": "v-1", "arn": inputs.get("secretId", "")}
            case "aws:lambda/function:Function":
                arn = f"{arn_prefix.format('lambda')}:function:{name}"
                computed = {
                    "arn": arn,
                    "invokeArn": f"arn:aws:apigateway:{REGION}:lambda:path/{arn}/invocations",
                    "version": "7",
                    "qualifiedArn": f"{arn}:7",
                    "codeSha256": inputs.get("codeSha256"),
                }
            case "aws:lambda/alias:Alias":
                function = f"{arn_prefix.format('lambda')}:function:{inputs['functionName']}"
                computed = {"arn": f"{function}:{name}", "invokeArn": f"{function}:{name}"}
            case "aws:lambda/functionUrl:FunctionUrl":
                computed = {
                    "functionUrl": f"https://abc123.lambda-url.{REGION}.on.aws/",
                    "urlId": "abc123",
                }
            case "gcp:serviceaccount/account:Account":
                email = f"{inputs['accountId']}@{GCP_PROJECT}.iam.gserviceaccount.com"
                computed = {"email": email, "member": f"serviceAccount:{email}", "name": email}
            case "gcp:secretmanager/secret:Secret":
                path = f"projects/{GCP_PROJECT}/secrets/{inputs['secretId']}"
                return path, {**inputs, "name": path}
            case "gcp:secretmanager/secretVersion:SecretVersion":
                computed = {"version": "1", "name": f"{inputs.get('secret')}/versions/1"}
            case "gcp:cloudrunv2/service:Service":
                computed = {"uri": f"https://{name}-{RUN_HASH}-ew.a.run.app"}
        return f"{args.name}-id", {**inputs, **computed}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], None]:
        return {}, None


@dataclass
class Run:
    resources: list[Registered]
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, short: str) -> list[Registered]:
        """Resources whose type ends with `short` (e.g. `Function`, `Permission`)."""
        return [r for r in self.resources if r.type.rsplit(":", 1)[-1] == short]

    def one(self, short: str) -> Registered:
        [found] = self.of_type(short)
        return found


def _ensure_event_loop() -> None:
    """Pulumi's runtime asks for the current event loop; an earlier `asyncio.run` (in another
    test of the same session) leaves none set, so set a fresh one then."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run(program: Callable[[], dict[str, Any]]) -> Run:
    """Run `program` under fresh mocks; raise what it raises."""
    _ensure_event_loop()
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, preview=False)
    result = Run(mocks.resources)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def body() -> Any:
        outputs = program()

        async def collect() -> None:
            for key, value in outputs.items():
                output = pulumi.Output.from_input(value)
                result.outputs[key] = await output.future()
                if await output.is_secret():
                    result.secret_outputs.add(key)

        return asyncio.ensure_future(collect())

    body()
    return result


def plain_parts(value: Any) -> Iterator[Any]:
    """Every leaf of `value` that is not under one of Pulumi's secret markers."""
    if rpc.is_rpc_secret(value):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from plain_parts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from plain_parts(item)
    else:
        yield value


def secret_parts(value: Any) -> Iterator[Any]:
    """Every value that sits under one of Pulumi's secret markers."""
    if rpc.is_rpc_secret(value):
        yield rpc.unwrap_rpc_secret(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from secret_parts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from secret_parts(item)


def assert_no_leak(
    result: Run,
    request: Any,
    canary: str,
    values: Mapping[str, str],
    secret_version_type: str,
) -> None:
    """The canary leak detector: `canary` (in every value of `values`) appears in no plain
    input of any resource, in no stack output and not in the request; every value appears under
    a secret marker, and only resources of `secret_version_type` take a secret input at all."""
    leaks = [
        (r.type, r.name)
        for r in result.resources
        if any(canary in str(part) for part in plain_parts(r.inputs))
    ]
    assert leaks == []
    protected = sorted(
        str(part)
        for r in result.resources
        for part in secret_parts(r.inputs)
        if canary in str(part)
    )
    assert protected == sorted(values.values())
    assert all(
        r.type == secret_version_type for r in result.resources if list(secret_parts(r.inputs))
    )
    assert canary not in json.dumps(result.outputs)
    assert canary not in json.dumps(request.to_dict())
