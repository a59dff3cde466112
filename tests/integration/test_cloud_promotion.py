"""Promotion between cloud environments through the Pulumi engine's seam (the recording
stand-in CLI), with the artifact carried for real: the Cloud Run image copied by digest
between two repositories of the local registry, and the Lambda zip fetched from staging's
artifact bucket (as on a runner that never built it) and copied to prod's, in moto's S3 server
on loopback, checksums verified. The stand-in's stack outputs point at the example running in
its local emulation, so every gate is a real MCP smoke test.

Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000).
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.objects import checksum_sha256, zip_key
from tests.integration.test_s3_copy import moto_server
from tests.support import pulumi_standin
from tests.support.cli import mcp_deploy
from tests.support.example import example_copy
from tests.support.net import free_port

pytestmark = pytest.mark.integration

TOKEN = "promo-cloud-token-canary-77aa"
KEY = "promo-cloud-key-canary-88bb"
REGION = "eu-west-1"


def environment(standin: Path, endpoint: str, tmp_path: Path) -> dict[str, str]:
    return {
        "TOOLBOX_LOCAL_TOKEN": TOKEN,
        "TOOLBOX_LOCAL_API_KEY": KEY,
        "STAGING_MCP_TOKEN": TOKEN,  # the local server behind both checks the same token
        "STAGING_TOOLBOX_KEY": KEY,
        "PROD_MCP_TOKEN": TOKEN,
        "PROD_TOOLBOX_KEY": KEY,
        "MCP_DEPLOY_PULUMI_ROOT": str(standin),
        "PULUMI_CONFIG_PASSPHRASE": "state-passphrase",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
    }


def outputs(url: str) -> dict[str, Any]:
    return {"url": url, "mcp_deploy": json.dumps({"deployed_at": "now"})}


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[str]:
    with moto_server(tmp_path / "moto.log") as url:
        yield url


def make_spec(tmp_path: Path) -> tuple[Path, str, str]:
    unique = uuid.uuid4().hex[:10]
    staging_repo = f"127.0.0.1:5000/promo-staging-{unique}"
    prod_repo = f"127.0.0.1:5000/promo-prod-{unique}"
    spec = example_copy(tmp_path / "toolbox", image_base=True, registry=staging_repo)
    text = spec.read_text()
    text = text.replace(
        'secrets.MCP_AUTH_TOKEN = "gcp-sm://projects/acme-mcp/secrets/toolbox-token/versions/3"',
        'secrets.MCP_AUTH_TOKEN = "env:PROD_MCP_TOKEN"',
    ).replace(
        'secrets.TOOLBOX_API_KEY = "aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:toolbox-api-key"',
        'secrets.TOOLBOX_API_KEY = "env:PROD_TOOLBOX_KEY"',
    )
    text = text.replace(
        "[environments.staging]\n",
        f'[environments.staging]\ntargets.lambda.artifact_bucket = "staging-{unique}"\n',
    ).replace(
        "[environments.prod]\n",
        f'[environments.prod]\ntargets.cloudrun.registry = "{prod_repo}"\n'
        f'targets.lambda.artifact_bucket = "prod-{unique}"\n',
    )
    spec.write_text(text)
    return spec, prod_repo, unique


def registry_digest(repository: str, digest: str) -> str:
    host, _, name = repository.partition("/")
    request = urllib.request.Request(
        f"http://{host}/v2/{name}/toolbox/manifests/{digest}",
        method="HEAD",
        headers={"Accept": "application/vnd.oci.image.index.v1+json, "
                 "application/vnd.oci.image.manifest.v1+json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(answer.headers["Docker-Content-Digest"])


def test_promotion_between_clouds_carries_the_artifact_by_digest(tmp_path: Path, s3: str) -> None:
    import boto3

    spec, prod_repo, unique = make_spec(tmp_path)
    standin = tmp_path / "pulumi"
    pulumi_standin.install(standin)
    env = environment(standin, s3, tmp_path)

    def run(*args: str) -> Any:
        done = mcp_deploy(spec, env, *args, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    client = boto3.client(
        "s3", region_name=REGION, endpoint_url=s3,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    for bucket in (f"staging-{unique}", f"prod-{unique}"):
        client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
    try:
        local = {t: run("--target", t)["record"] for t in ("cloudrun", "lambda")}
        scenario = standin / "scenario.json"

        # Cloud Run: staging pushes the image to its repository; prod gets it copied by digest
        scenario.write_text(json.dumps({"outputs": outputs(local["cloudrun"]["url"])}))
        staged = run("--target", "cloudrun", "--env", "staging")["record"]
        digest = staged["artifact_digest"]
        assert staged["artifact_location"].endswith(f"/toolbox@{digest}")
        (promoted,) = run("promote", "--from", "staging", "--to", "prod", "--target", "cloudrun")[
            "records"
        ]
        assert promoted["artifact_location"] == f"{prod_repo}/toolbox@{digest}"
        assert (promoted["promoted_from"], promoted["status"]) == ("staging", "verified")
        assert registry_digest(prod_repo, digest) == digest

        # Lambda: staging's zip is in its bucket (as the program puts it); this runner's store
        # loses it; the promotion fetches it (verified) and copies it to prod's bucket
        scenario.write_text(json.dumps({"outputs": outputs(local["lambda"]["url"])}))
        staged = run("--target", "lambda", "--env", "staging")["record"]
        digest = staged["artifact_digest"]
        blob = spec.parent / ".mcp-deploy" / "store" / "blobs" / "sha256" / digest[7:]
        key = zip_key("toolbox", digest)
        client.put_object(
            Bucket=f"staging-{unique}", Key=key, Body=blob.read_bytes(), ChecksumAlgorithm="SHA256"
        )
        blob.unlink()
        (promoted,) = run("promote", "--from", "staging", "--to", "prod", "--target", "lambda")[
            "records"
        ]
        assert (promoted["artifact_digest"], promoted["status"]) == (digest, "verified")
        assert blob.exists()  # fetched back, verified by the store
        head = client.head_object(Bucket=f"prod-{unique}", Key=key, ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == checksum_sha256(digest)

        # a promotion that fails its gate is rolled back through the engine (a second `up`)
        dead = f"http://127.0.0.1:{free_port()}/mcp"
        scenario.write_text(
            json.dumps({"up_outputs": [outputs(dead), outputs(local["lambda"]["url"])]})
        )
        failed = mcp_deploy(
            spec, env, "promote", "--from", "staging", "--to", "prod", "--target", "lambda"
        )
        assert failed.returncode == 3, failed.stdout + failed.stderr
        history = run("history", "--env", "prod", "--target", "lambda")["records"]
        assert [(r["action"], r["status"]) for r in history[:3]] == [
            ("rollback", "verified"),
            ("promote", "failed"),
            ("promote", "verified"),
        ]
        text = json.dumps(pulumi_standin.calls(standin))
        assert TOKEN not in text and KEY not in text
    finally:
        mcp_deploy(spec, env, "destroy", "--env", "local")
