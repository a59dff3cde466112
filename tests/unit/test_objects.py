"""`orchestrator.objects` names and checksums zips exactly as the Lambda program does.

stacks may not import orchestrator.objects, so the key format is written twice; this keeps the
two equal by running the real program offline with an `artifact_bucket` and comparing what it
declares (the S3 object's key, the function's CodeSha256) with `zip_key`/`checksum_sha256`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orchestrator.artifacts import Artifact
from orchestrator.deploy.flow import request_for
from orchestrator.environments import resolve
from orchestrator.errors import OperationError
from orchestrator.objects import checksum_sha256, zip_key
from orchestrator.pulumi.offline import run_offline
from orchestrator.spec.loader import load_spec
from stacks import program_for
from tests.conftest import EXAMPLE_SPEC

SECRET_VALUES = {"MCP_AUTH_TOKEN": "token", "TOOLBOX_API_KEY": "key"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the mock runtime and pulumi_aws
def test_zip_key_and_checksum_are_the_lambda_programs(tmp_path: Path) -> None:
    path = tmp_path / "lambda.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mcp_deploy_lambda.py", "def handler(event, context):\n    return {}\n")
    data = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    loaded = load_spec(EXAMPLE_SPEC)
    artifact = Artifact("lambda-zip", "lambda", digest, len(data), "inputs", path)
    request = request_for(loaded, resolve(loaded, "staging", "lambda"), artifact)
    request = dataclasses.replace(
        request, options={**request.options, "artifact_bucket": "acme-lambda-artifacts"}
    )
    program = program_for("lambda")

    result = run_offline(lambda: program(request, SECRET_VALUES, artifact_path=str(path)))

    assert result.one("BucketObjectv2").inputs["key"] == zip_key(request.server, digest)
    assert zip_key(request.server, digest) == f"mcp-deploy/toolbox/{digest[7:]}.zip"
    assert result.one("Function").inputs["codeSha256"] == checksum_sha256(digest)


@pytest.mark.parametrize(
    "digest", ["0f" * 32, "sha256:" + "0F" * 32, "sha256:" + "0f" * 31, "sha512:" + "0f" * 32, ""]
)
def test_only_a_sha256_digest_names_a_zip(digest: str) -> None:
    with pytest.raises(OperationError, match="is not a sha256 digest"):
        zip_key("toolbox", digest)
    with pytest.raises(OperationError):
        checksum_sha256(digest)


def test_importing_objects_imports_no_aws_sdk() -> None:
    code = (
        "import sys, orchestrator.objects; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
