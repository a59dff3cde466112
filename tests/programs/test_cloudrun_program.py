"""The Cloud Run program under Pulumi's mock runtime: resources, secrets by pinned version, IAM,
names within GCP's limits, no leaks.

The request is the toolbox example's real `DeploymentRequest` for Cloud Run; the artifact is an
image pushed (by reference only: nothing is pulled) to the example's registry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
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
from tests.conftest import EXAMPLE_SPEC
from tests.programs.mocks import (
    GCP_PROJECT,
    RUN_HASH,
    Run,
    assert_no_leak,
    run,
)

# the mock runtime and pulumi_gcp emit DeprecationWarnings
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CANARY = "canary-4b9d2e7a-do-not-leak"
SECRET_VALUES = {"MCP_AUTH_TOKEN": f"{CANARY}-token", "TOOLBOX_API_KEY": f"{CANARY}-key"}
DIGEST = "sha256:" + hashlib.sha256(b"toolbox image manifest").hexdigest()
REPOSITORY = "europe-west1-docker.pkg.dev/acme-mcp/mcp/toolbox"
IMAGE = f"{REPOSITORY}@{DIGEST}"
ACCESSOR = "roles/secretmanager.secretAccessor"


def example_request(
    environment: str = "staging", location: str | None = IMAGE
) -> DeploymentRequest:
    loaded = load_spec(EXAMPLE_SPEC)
    artifact = Artifact(
        kind="oci-image",
        target="cloudrun",
        digest=DIGEST,
        size=1,
        inputs_hash="x",
        path=Path("/nowhere"),
        location=location,
    )
    return request_for(loaded, resolve(loaded, environment, "cloudrun"), artifact)


def deploy(request: DeploymentRequest, values: dict[str, str] | None = None) -> Run:
    program = program_for("cloudrun")
    chosen = SECRET_VALUES if values is None else values
    return run(lambda: program(request, chosen, artifact_path="/nowhere"))


def with_secrets(request: DeploymentRequest, **secrets: str) -> DeploymentRequest:
    return dataclasses.replace(request, secrets={**request.secrets, **secrets})


def container(result: Run) -> dict[str, Any]:
    [only] = result.one("Service").inputs["template"]["containers"]
    found: dict[str, Any] = only
    return found


def envs(result: Run) -> dict[str, Any]:
    return {
        env["name"]: env.get("value", env.get("valueSource")) for env in container(result)["envs"]
    }


def accessors(result: Run) -> dict[str, str]:
    """secret id -> member of every accessor grant (each secret at most once)."""
    grants = [r.inputs for r in result.of_type("SecretIamMember")]
    assert all(g["role"] == ACCESSOR for g in grants)
    by_secret = {g["secretId"]: g["member"] for g in grants}
    assert len(by_secret) == len(grants)
    return by_secret


def secret_path(secret: str) -> str:
    return f"projects/{GCP_PROJECT}/secrets/{secret}"


def test_staging_declares_a_public_service_running_the_image_by_digest() -> None:
    request = example_request()
    result = deploy(request)

    assert sorted(r.type for r in result.resources) == sorted(
        [
            "pulumi:providers:gcp",
            "gcp:serviceaccount/account:Account",
            "gcp:secretmanager/secret:Secret",
            "gcp:secretmanager/secret:Secret",
            "gcp:secretmanager/secretVersion:SecretVersion",
            "gcp:secretmanager/secretVersion:SecretVersion",
            "gcp:secretmanager/secretIamMember:SecretIamMember",
            "gcp:secretmanager/secretIamMember:SecretIamMember",
            "gcp:cloudrunv2/service:Service",
            "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
        ]
    )
    # one explicit provider with the request's project and region, passed to every resource
    provider = result.one("gcp")
    assert provider.inputs["project"] == "acme-mcp"
    assert provider.inputs["region"] == "europe-west1"
    for resource in result.resources:
        if resource is not provider:
            assert resource.provider is not None
            urn, _, _id = resource.provider.rpartition("::")
            assert urn.endswith(f"pulumi:providers:gcp::{provider.name}"), resource.name

    email = f"toolbox-staging@{GCP_PROJECT}.iam.gserviceaccount.com"
    assert result.one("Account").inputs["accountId"] == "toolbox-staging"

    service = result.one("Service").inputs
    labels = {"mcp-deploy-server": "toolbox", "mcp-deploy-environment": "staging"}
    assert service["name"] == "toolbox-staging"
    assert service["location"] == "europe-west1"
    assert service["deletionProtection"] is False
    assert service["ingress"] == "INGRESS_TRAFFIC_ALL"
    assert service["labels"] == labels
    template = service["template"]
    assert template["serviceAccount"] == email
    assert template["scaling"] == {"minInstanceCount": 0, "maxInstanceCount": 3}  # staging: 3
    assert template["maxInstanceRequestConcurrency"] == 80
    assert template["timeout"] == "300s"
    assert template["labels"] == labels
    image = container(result)
    assert image["image"] == IMAGE
    assert image["image"].endswith(f"@{request.artifact.digest}")
    assert image["ports"] == {"containerPort": 8080}
    assert image["resources"] == {
        "limits": {"cpu": "1", "memory": "512Mi"},
        "cpuIdle": True,
        "startupCpuBoost": True,
    }
    assert envs(result) == {
        "GREETING": "Hello from staging",
        "LOG_LEVEL": "debug",
        "MCP_AUTH_TOKEN": {
            "secretKeyRef": {
                "secret": secret_path("toolbox-staging-MCP_AUTH_TOKEN"),
                "version": "1",
            }
        },
        "TOOLBOX_API_KEY": {
            "secretKeyRef": {
                "secret": secret_path("toolbox-staging-TOOLBOX_API_KEY"),
                "version": "1",
            }
        },
    }

    secrets = sorted(r.inputs["secretId"] for r in result.of_type("Secret"))
    assert secrets == ["toolbox-staging-MCP_AUTH_TOKEN", "toolbox-staging-TOOLBOX_API_KEY"]
    for secret in result.of_type("Secret"):
        assert secret.inputs["replication"] == {"auto": {}}
        assert secret.inputs["labels"] == labels
    assert sorted(v.inputs["secret"] for v in result.of_type("SecretVersion")) == [
        secret_path(s) for s in secrets
    ]

    invoker = result.one("ServiceIamMember").inputs
    assert invoker == {
        "name": "toolbox-staging",
        "location": "europe-west1",
        "role": "roles/run.invoker",
        "member": "allUsers",
    }

    assert result.outputs == {
        "url": f"https://toolbox-staging-{RUN_HASH}-ew.a.run.app/mcp",
        "service": "toolbox-staging",
        "service_account": email,
    }
    assert result.secret_outputs == set()


def test_the_service_account_may_read_exactly_its_secrets() -> None:
    result = deploy(example_request())
    member = f"serviceAccount:toolbox-staging@{GCP_PROJECT}.iam.gserviceaccount.com"
    assert accessors(result) == {
        secret_path("toolbox-staging-MCP_AUTH_TOKEN"): member,
        secret_path("toolbox-staging-TOOLBOX_API_KEY"): member,
    }


def test_an_aws_secret_is_refused_for_cloud_run() -> None:
    # the example's prod takes TOOLBOX_API_KEY from aws-sm://
    request = example_request("prod")
    with pytest.raises(
        OperationError, match="TOOLBOX_API_KEY: a aws-sm reference cannot reach a Cloud Run"
    ):
        deploy(request, values={})


def test_a_referenced_secret_is_bound_by_its_pinned_version() -> None:
    request = with_secrets(example_request("prod"), TOOLBOX_API_KEY="env:PROD_TOOLBOX_KEY")
    result = deploy(request, values={"TOOLBOX_API_KEY": SECRET_VALUES["TOOLBOX_API_KEY"]})

    # prod's MCP_AUTH_TOKEN is gcp-sm://projects/acme-mcp/secrets/toolbox-token/versions/3
    assert [r.inputs["secretId"] for r in result.of_type("Secret")] == [
        "toolbox-prod-TOOLBOX_API_KEY"
    ]
    variables = envs(result)
    assert variables["MCP_AUTH_TOKEN"] == {
        "secretKeyRef": {"secret": secret_path("toolbox-token"), "version": "3"}
    }
    assert variables["TOOLBOX_API_KEY"] == {
        "secretKeyRef": {"secret": secret_path("toolbox-prod-TOOLBOX_API_KEY"), "version": "1"}
    }
    member = f"serviceAccount:toolbox-prod@{GCP_PROJECT}.iam.gserviceaccount.com"
    assert accessors(result) == {
        secret_path("toolbox-token"): member,
        secret_path("toolbox-prod-TOOLBOX_API_KEY"): member,
    }
    # prod: min_instances 1, max_instances the spec's default
    scaling = result.one("Service").inputs["template"]["scaling"]
    assert scaling == {"minInstanceCount": 1, "maxInstanceCount": 10}


@pytest.mark.parametrize("version", ["latest", "v3", ""])
def test_an_unpinned_secret_version_is_refused(version: str) -> None:
    ref = f"gcp-sm://projects/acme-mcp/secrets/toolbox-token/versions/{version}"
    request = with_secrets(example_request(), MCP_AUTH_TOKEN=ref)
    with pytest.raises(OperationError, match=r"MCP_AUTH_TOKEN: .*(pinned version number|not gcp)"):
        deploy(request, values={"TOOLBOX_API_KEY": "x"})


def test_iam_auth_leaves_the_service_private() -> None:
    request = dataclasses.replace(example_request(), auth={"mode": "iam"})
    result = deploy(request)
    assert result.of_type("ServiceIamMember") == []


def test_oauth_auth_lets_the_challenge_and_metadata_reach_clients() -> None:
    """An OAuth resource server answers unauthenticated requests itself (401 with the
    challenge, the metadata at the well-known URL): Cloud Run must not refuse them first."""
    request = dataclasses.replace(
        example_request(), auth={"mode": "oauth", "issuer": "https://idp.example.com"}
    )
    (member,) = deploy(request).of_type("ServiceIamMember")
    assert (member.inputs["role"], member.inputs["member"]) == ("roles/run.invoker", "allUsers")


def test_a_configured_service_account_is_used_and_none_created() -> None:
    email = f"toolbox-runner@{GCP_PROJECT}.iam.gserviceaccount.com"
    request = example_request()
    request = dataclasses.replace(
        request, options={**request.options, "service_account": email, "ingress": "internal"}
    )
    result = deploy(request)

    assert result.of_type("Account") == []
    service = result.one("Service").inputs
    assert service["template"]["serviceAccount"] == email
    assert service["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    assert set(accessors(result).values()) == {f"serviceAccount:{email}"}
    assert result.outputs["service_account"] == email


def test_longest_names_fit_gcp_limits() -> None:
    server, environment = "s" * 31 + "1", "e" * 15 + "2"  # the spec's maxima: 32 and 16
    request = dataclasses.replace(example_request(), server=server, environment=environment)
    result = deploy(request)

    name = f"{server}-{environment}"
    assert result.one("Service").inputs["name"] == name and len(name) == 49
    account = result.one("Account").inputs["accountId"]
    assert len(account) <= 30
    assert re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", account)
    assert account == f"{name[:23]}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
    # stable across runs
    assert deploy(request).one("Account").inputs["accountId"] == account
    for resource in result.resources:
        for value in resource.inputs.get("labels", {}).values():
            assert len(value) <= 63 and value == value.lower()


def test_account_ids_stay_unique_valid_and_stable() -> None:
    from stacks.cloudrun import account_id

    assert account_id("toolbox-staging") == "toolbox-staging"
    assert account_id("a-b") == "a-b-mcp"
    long_a, long_b = "a" * 40 + "-x", "a" * 40 + "-y"
    assert account_id(long_a) != account_id(long_b)
    assert account_id(long_a) == account_id(long_a)
    for value in (long_a, long_b, "a" * 22 + "-" + "b" * 10):
        assert re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", account_id(value))


def test_secret_values_never_reach_a_plain_input_or_output() -> None:
    """Canary leak detector (as for Lambda): a canary outside a secret marker is a plaintext
    leak into state; the positive control shows the detector sees the values where they
    belong, and only in SecretVersions."""
    request = example_request()
    result = deploy(request)

    assert_no_leak(
        result, request, CANARY, SECRET_VALUES, "gcp:secretmanager/secretVersion:SecretVersion"
    )


def test_an_unpushed_image_is_refused() -> None:
    request = example_request(location=None)
    with pytest.raises(OperationError, match="has not been pushed"):
        deploy(request)


def test_the_image_location_must_carry_the_requested_digest() -> None:
    other = "sha256:" + "0" * 64
    request = example_request(location=f"{REPOSITORY}@{other}")
    with pytest.raises(OperationError, match="is not the requested artifact"):
        deploy(request)


def test_a_request_without_project_or_region_is_refused() -> None:
    request = example_request()
    request = dataclasses.replace(request, options={**request.options, "project": None})
    with pytest.raises(OperationError, match="no GCP project for environment staging"):
        deploy(request)


def test_fractional_cpu_needs_concurrency_one() -> None:
    request = example_request()
    request = dataclasses.replace(request, options={**request.options, "cpu": 0.5})
    with pytest.raises(OperationError, match="concurrency 1 when cpu is below 1"):
        deploy(request)
    request = dataclasses.replace(request, options={**request.options, "concurrency": 1})
    result = deploy(request)
    assert container(result)["resources"]["limits"] == {"cpu": "0.5", "memory": "512Mi"}
    template = result.one("Service").inputs["template"]
    assert template["executionEnvironment"] == "EXECUTION_ENVIRONMENT_GEN1"


def test_secret_values_must_match_the_declared_sources() -> None:
    with pytest.raises(OperationError, match="missing: TOOLBOX_API_KEY; not declared as"):
        deploy(example_request(), {"MCP_AUTH_TOKEN": "x", "OTHER": "y"})
