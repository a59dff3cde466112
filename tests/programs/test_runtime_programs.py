"""The programs for servers in other runtimes than Python, under Pulumi's mock runtime:
Lambda runs a binary on provided.al2023 and a Node command on nodejs behind AWS's Lambda Web
Adapter layer (the version the local emulation builds from its crate), a Node entry server on
nodejs with the shim's handler; Cloud Run runs any image as built, by digest; Workers uploads a
Node server's ES module with nodejs_compat.
"""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import pytest

from orchestrator.errors import OperationError
from stacks._aws_lambda_runtime import WEB_ADAPTER_LAYER_VERSION, web_adapter_layer
from targets.aws_lambda.web_adapter import LAYER_VERSION, WEB_ADAPTER_VERSION
from targets.workers import WorkersOptions
from targets.workers.package_node import worker_metadata
from tests.programs import test_cloudrun_program as cloudrun
from tests.programs import test_workers_program as workers
from tests.programs.mocks import REGION
from tests.programs.test_lambda_program import (
    SECRET_VALUES,
    deploy,
    example_request,
    function_of,
    with_options,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_a_binary_runs_on_provided_al2023_behind_the_web_adapter_layer(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    request = dataclasses.replace(request, runtime="binary")
    function = function_of(deploy(request, path))

    assert function["runtime"] == "provided.al2023"
    assert function["handler"] == "bootstrap"
    assert function["architectures"] == ["x86_64"]
    assert function["layers"] == [
        f"arn:aws:lambda:{REGION}:753240598075:layer:LambdaAdapterLayerX86:"
        f"{WEB_ADAPTER_LAYER_VERSION}"
    ]
    # secrets still reach it the same way: ARNs the launcher reads at cold start
    assert "MCP_DEPLOY_SECRET_ARNS" in function["environment"]["variables"]


def test_a_python_server_has_no_layer(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    function = function_of(deploy(request, path))
    assert function["runtime"] == "python3.11"
    assert "layers" not in function


def test_the_cloud_layer_is_the_adapter_the_emulation_builds() -> None:
    assert WEB_ADAPTER_LAYER_VERSION == LAYER_VERSION
    assert WEB_ADAPTER_VERSION == "0.9.1"  # AWS published 0.9.1 as layer version 25


@pytest.mark.parametrize(
    ("region", "arch", "arn"),
    [
        (
            "eu-west-1",
            "arm64",
            "arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerArm64",
        ),
        (
            "cn-north-1",
            "x86_64",
            "arn:aws-cn:lambda:cn-north-1:041581134020:layer:LambdaAdapterLayerX86",
        ),
        (
            "cn-northwest-1",
            "x86_64",
            "arn:aws-cn:lambda:cn-northwest-1:069767869989:layer:LambdaAdapterLayerX86",
        ),
    ],
)
def test_the_layer_arn_follows_region_and_cpu(region: str, arch: str, arn: str) -> None:
    assert web_adapter_layer(region, arch) == f"{arn}:{WEB_ADAPTER_LAYER_VERSION}"


@pytest.mark.parametrize(("region", "arch"), [("us-gov-west-1", "x86_64"), ("cn-north-1", "arm64")])
def test_regions_without_a_published_layer_are_refused(region: str, arch: str) -> None:
    with pytest.raises(OperationError) as caught:
        web_adapter_layer(region, arch)
    assert region in caught.value.message and arch in caught.value.message


def test_snap_start_is_refused_for_a_binary(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    request = dataclasses.replace(with_options(request, snap_start=True), runtime="binary")
    with pytest.raises(OperationError) as caught:
        deploy(request, path, SECRET_VALUES)
    assert "targets.lambda.snap_start" in caught.value.message
    assert "OS-only or Node.js" in caught.value.message


def test_cloud_run_runs_a_binary_image_by_digest_like_any_other() -> None:
    request = dataclasses.replace(cloudrun.example_request(), runtime="binary")
    result = cloudrun.deploy(request)
    service = result.one("Service").inputs
    (container,) = service["template"]["containers"]
    assert container["image"].endswith("@" + cloudrun.DIGEST)
    assert "command" not in container and "args" not in container  # the image's entrypoint


def test_a_node_entry_server_runs_on_the_managed_node_runtime(tmp_path: Path) -> None:
    request, path = example_request(tmp_path)
    request = dataclasses.replace(request, runtime="node", runtime_version="22")
    function = function_of(deploy(request, path))
    assert (function["runtime"], function["handler"]) == ("nodejs22.x", "index.handler")
    assert "layers" not in function
    assert "AWS_LAMBDA_EXEC_WRAPPER" not in function["environment"]["variables"]


def test_a_node_command_runs_behind_the_launcher_and_the_web_adapter(tmp_path: Path) -> None:
    request, _ = example_request(tmp_path)
    path = tmp_path / "launcher.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("bootstrap", b"\x7fELF launcher")
        archive.writestr("mcp_deploy_runtime.json", "{}")
    data = path.read_bytes()
    artifact = dataclasses.replace(
        request.artifact, digest="sha256:" + hashlib.sha256(data).hexdigest(), size=len(data)
    )
    request = dataclasses.replace(request, runtime="node", runtime_version="20", artifact=artifact)
    function = function_of(deploy(request, path))
    assert (function["runtime"], function["handler"]) == ("nodejs20.x", "bootstrap")
    assert function["layers"] == [
        f"arn:aws:lambda:{REGION}:753240598075:layer:LambdaAdapterLayerX86:"
        f"{WEB_ADAPTER_LAYER_VERSION}"
    ]
    assert function["environment"]["variables"]["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"


def js_bundle(tmp_path: Path, metadata: bytes) -> Path:
    path = tmp_path / "worker.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("worker.mjs", b"export default { fetch() { return new Response('') } }")
        archive.writestr("mcp_deploy_worker.json", metadata)
    return path


def test_a_node_worker_uploads_its_es_module_with_nodejs_compat(tmp_path: Path) -> None:
    options = WorkersOptions(account_id=workers.ACCOUNT_ID)
    path = js_bundle(tmp_path, worker_metadata(options))
    request = dataclasses.replace(
        workers.example_request(path), runtime="node", runtime_version="22"
    )
    version = workers.deploy(request, path).one("WorkerVersion").inputs
    assert version["mainModule"] == "worker.mjs"
    (module,) = version["modules"]
    assert (module["name"], module["contentType"]) == (
        "worker.mjs",
        "application/javascript+module",
    )
    assert version["compatibilityFlags"] == ["nodejs_compat"]


def test_a_node_worker_built_for_other_flags_is_refused(tmp_path: Path) -> None:
    built = WorkersOptions(account_id=workers.ACCOUNT_ID, compatibility_flags=["streams_enable"])
    path = js_bundle(tmp_path, worker_metadata(built))
    request = dataclasses.replace(
        workers.example_request(path), runtime="node", runtime_version="22"
    )
    with pytest.raises(OperationError) as caught:
        workers.deploy(request, path)
    assert "the bundle was built for" in caught.value.message
