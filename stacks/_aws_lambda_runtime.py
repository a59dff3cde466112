"""Which Lambda runtime, handler and layers a request's server runs on.

- runtime "python": the managed `python{minor}` runtime, handler `mcp_deploy_lambda.handler`
  (the shim in the zip), no layer;
- runtime "node": the managed `nodejs{major}.x` runtime, handler `index.handler` (the bundle
  of mcp-deploy's shim and the server's fetch handler);
- a server that runs as a process behind mcp-deploy's launcher (runtime "binary": the OS-only
  `provided.al2023` runtime; a Node `command`: `nodejs{major}.x` with
  `AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap`, which makes the runtime start the handler file
  instead): handler `bootstrap` (the launcher at the zip's root) and AWS's own Lambda Web
  Adapter layer, which turns Function URL events into HTTP requests to the launcher on
  127.0.0.1:8080. The layer version is the one AWS published for adapter 0.9.1, the version
  the local emulation builds from its crate (`targets/aws_lambda/web_adapter.py`): change both
  together.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import OperationError

PYTHON_HANDLER = "mcp_deploy_lambda.handler"
NODE_HANDLER = "index.handler"
EXEC_WRAPPER = "/opt/bootstrap"  # the Web Adapter layer's wrapper: runs $LAMBDA_TASK_ROOT/$_HANDLER
BINARY_RUNTIME = "provided.al2023"
BINARY_HANDLER = "bootstrap"
WEB_ADAPTER_LAYER_VERSION = 25  # Lambda Web Adapter 0.9.1
# The accounts AWS publishes the adapter's layers from, per region (docs: "Zip Packages");
# the China regions have x86_64 layers only.
_WEB_ADAPTER_ACCOUNTS = {
    "cn-north-1": ("aws-cn", "041581134020"),
    "cn-northwest-1": ("aws-cn", "069767869989"),
}
_COMMERCIAL_ACCOUNT = "753240598075"
_LAYER_NAMES = {"x86_64": "LambdaAdapterLayerX86", "arm64": "LambdaAdapterLayerArm64"}


@dataclass(frozen=True)
class LambdaRuntime:
    """What `aws.lambda_.Function` gets for the request's server."""

    runtime: str
    handler: str
    layers: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()  # set by mcp-deploy, not by the spec


def lambda_runtime(
    request: DeploymentRequest, region: str, arch: str, *, has_launcher: bool
) -> LambdaRuntime:
    """The runtime, handler, layers and variables of `request` in `region` on CPU `arch`;
    `has_launcher`: the zip holds mcp-deploy's launcher (`bootstrap`). `OperationError` where
    AWS publishes no Lambda Web Adapter layer for a server behind the launcher."""
    if request.runtime == "binary":
        return LambdaRuntime(BINARY_RUNTIME, BINARY_HANDLER, (web_adapter_layer(region, arch),))
    if request.runtime == "node":
        managed = f"nodejs{request.runtime_version}.x"
        if not has_launcher:
            return LambdaRuntime(managed, NODE_HANDLER)
        return LambdaRuntime(
            managed,
            BINARY_HANDLER,
            (web_adapter_layer(region, arch),),
            (("AWS_LAMBDA_EXEC_WRAPPER", EXEC_WRAPPER),),
        )
    return LambdaRuntime(f"python{request.python}", PYTHON_HANDLER)


def web_adapter_layer(region: str, arch: str) -> str:
    """The ARN of AWS's Lambda Web Adapter layer for `region` and `arch`."""
    partition, account = _WEB_ADAPTER_ACCOUNTS.get(region, ("aws", _COMMERCIAL_ACCOUNT))
    if region.startswith("us-gov-") or (partition == "aws-cn" and arch != "x86_64"):
        raise OperationError(
            f"AWS publishes no Lambda Web Adapter layer for {arch} in {region}, which a "
            'runtime = "binary" server needs on Lambda',
            hint="deploy to another region (or x86_64 in the China regions), or to Cloud Run",
        )
    name = _LAYER_NAMES[arch]
    return f"arn:{partition}:lambda:{region}:{account}:layer:{name}:{WEB_ADAPTER_LAYER_VERSION}"
