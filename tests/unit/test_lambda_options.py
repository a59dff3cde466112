"""`[targets.lambda]` guard rails: what `mcp-deploy validate` refuses before any cloud call.

Limits from the Lambda quotas page (memory 128-10240 MB, timeout 1-900 s, ephemeral storage
512-10240 MB), the S3 bucket naming rules, KMS key ARNs, and SnapStart's exclusions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.errors import SpecError
from orchestrator.spec.loader import load_spec
from targets.aws_lambda.target import LambdaOptions
from tests.conftest import MINIMAL

KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def refused(**options: Any) -> str:
    """The validation message for `options` (which must be refused)."""
    with pytest.raises(ValidationError) as caught:
        LambdaOptions(**options)
    return str(caught.value)


def test_defaults() -> None:
    options = LambdaOptions()
    assert (options.memory, options.timeout, options.ephemeral_storage) == (512, 30, 512)
    assert options.artifact_bucket is None
    assert options.secrets_kms_key is None
    assert options.snap_start is False


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("memory", 128, 10240), ("timeout", 1, 900), ("ephemeral_storage", 512, 10240)],
)
def test_numeric_limits_are_lambdas(name: str, low: int, high: int) -> None:
    assert getattr(LambdaOptions(**{name: low}), name) == low
    assert getattr(LambdaOptions(**{name: high}), name) == high
    assert name in refused(**{name: low - 1})
    assert name in refused(**{name: high + 1})


@pytest.mark.parametrize(
    "region",
    [
        "eu-west-1",
        "us-east-1",
        "us-gov-west-1",
        "ap-southeast-4",
        "il-central-1",
        "eu-central-2",
        "ca-west-1",
        "mx-central-1",
        "cn-northwest-1",
        "us-isob-east-1",
    ],
)
def test_real_regions_are_accepted(region: str) -> None:
    assert LambdaOptions(region=region).region == region


@pytest.mark.parametrize(
    "region", ["eu-west", "EU-WEST-1", "euwest1", "eu-west-1a", "eu_west_1", " eu-west-1", ""]
)
def test_region_lookalikes_are_refused(region: str) -> None:
    assert "region" in refused(region=region)


@pytest.mark.parametrize(
    "key",
    [
        KEY,
        "arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
        "arn:aws:kms:eu-west-1:123456789012:alias/mcp-secrets",
        "arn:aws:kms:eu-west-1:123456789012:alias/team/mcp_secrets",
        "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ],
)
def test_kms_key_and_alias_arns_are_accepted(key: str) -> None:
    assert LambdaOptions(secrets_kms_key=key).secrets_kms_key == key


@pytest.mark.parametrize(
    "key",
    [
        "1234abcd-12ab-34cd-56ef-1234567890ab",  # a bare key id
        "alias/mcp-secrets",  # an alias name, not its ARN
        "arn:aws:kms:eu-west-1:123456789012:key/not-a-key-id",
        "arn:aws:kms:eu-west-1:1234:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x",
    ],
)
def test_other_kms_names_are_refused(key: str) -> None:
    assert "secrets_kms_key" in refused(secrets_kms_key=key)


def test_an_aws_managed_key_is_refused() -> None:
    message = refused(secrets_kms_key="arn:aws:kms:eu-west-1:123456789012:alias/aws/secretsmanager")
    assert "AWS managed key" in message


def test_the_kms_key_must_be_in_the_functions_region() -> None:
    assert LambdaOptions(region="eu-west-1", secrets_kms_key=KEY).secrets_kms_key == KEY
    message = refused(region="us-east-1", secrets_kms_key=KEY)
    assert "secrets_kms_key is in eu-west-1, the function in us-east-1" in message


@pytest.mark.parametrize(
    "bucket", ["abc", "acme-lambda-artifacts", "acme.artifacts.eu", "a" * 63, "0-bucket-9"]
)
def test_valid_bucket_names_are_accepted(bucket: str) -> None:
    assert LambdaOptions(artifact_bucket=bucket).artifact_bucket == bucket


@pytest.mark.parametrize(
    ("bucket", "why"),
    [
        ("ab", "too short"),
        ("a" * 64, "too long"),
        ("Acme-Artifacts", "uppercase"),
        ("acme_artifacts", "underscore"),
        ("-acme", "starts with a hyphen"),
        ("acme.", "ends with a period"),
        ("acme..artifacts", "adjacent periods"),
        ("192.168.5.4", "an IP address"),
        ("xn--acme", "reserved prefix"),
        ("sthree-acme", "reserved prefix"),
        ("amzn-s3-demo-bucket", "reserved prefix"),
        ("acme-s3alias", "reserved suffix"),
        ("acme--ol-s3", "reserved suffix"),
        ("acme.mrap", "reserved suffix"),
        ("acme--x-s3", "directory bucket"),
        ("acme--table-s3", "table bucket"),
        ("s3://acme", "a URL"),
    ],
)
def test_invalid_bucket_names_are_refused(bucket: str, why: str) -> None:
    assert "artifact_bucket" in refused(artifact_bucket=bucket), why


def test_snap_start_excludes_provisioned_concurrency() -> None:
    assert LambdaOptions(snap_start=True).snap_start is True
    message = refused(snap_start=True, provisioned_concurrency=2)
    assert "snap_start cannot be combined with provisioned_concurrency (2)" in message
    assert LambdaOptions(snap_start=False, provisioned_concurrency=2).provisioned_concurrency == 2


def test_snap_start_allows_at_most_512_mb_of_ephemeral_storage() -> None:
    assert LambdaOptions(snap_start=True, ephemeral_storage=512).snap_start is True
    assert "at most 512 MB of ephemeral_storage" in refused(snap_start=True, ephemeral_storage=513)


LAMBDA = MINIMAL + '\n[targets.lambda]\nregion = "eu-west-1"\n'


def issues(write: Callable[[str], Path], text: str) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        load_spec(write(text))
    return {issue.where: issue.message for issue in caught.value.issues}


def test_validate_reports_snap_start_with_an_environments_provisioned_concurrency(
    project: Callable[[str], Path],
) -> None:
    text = (
        LAMBDA + "snap_start = true\n\n[environments.prod]\n"
        "targets.lambda.provisioned_concurrency = 2\n"
    )
    found = issues(project, text)
    assert list(found) == ["environments.prod.targets.lambda"]
    assert "snap_start cannot be combined" in found["environments.prod.targets.lambda"]


def test_validate_reports_a_bad_bucket_in_an_environment(project: Callable[[str], Path]) -> None:
    text = LAMBDA + '\n[environments.prod]\ntargets.lambda.artifact_bucket = "acme..artifacts"\n'
    found = issues(project, text)
    assert any(where.endswith("artifact_bucket") for where in found), found


def test_validate_accepts_the_new_options(project: Callable[[str], Path]) -> None:
    text = LAMBDA + f'artifact_bucket = "acme-artifacts"\nsecrets_kms_key = "{KEY}"\n'
    loaded = load_spec(project(text + "snap_start = true\n"))
    assert loaded.spec.targets.declared()["lambda"].model_dump()["snap_start"] is True
