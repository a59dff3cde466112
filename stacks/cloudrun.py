"""The Google Cloud Run program: one request -> a Cloud Run (v2) service running the pushed image.

`program(request, secret_values, *, artifact_path)` (the `stacks.Program` contract) declares,
with an explicit `gcp.Provider(project=..., region=...)` passed to every resource (no ambient
config), for the name `{server}-{environment}` (at most 49 characters with the spec's limits,
Cloud Run's own limit):
- a service account `{name}` (account_id shortened to 30 characters with a stable hash when
  longer), unless `options.service_account` names one: then that email is used and none created;
- per `env:`/`file:` secret, a Secret Manager secret `{name}-{NAME}` (automatic replication) and
  a version whose `secret_data` is `Output.secret(value)`; `gcp-sm://…/versions/N` secrets are
  used where they are, bound by their pinned version number (`latest` is refused); `aws-sm://`
  is refused;
- per secret used, one `roles/secretmanager.secretAccessor` member for the service account on
  exactly that secret;
- the service: the image by digest (`request.artifact.location`), port 8080, cpu/memory limits,
  min/max instances, concurrency, timeout, ingress, `request.config` as plain env vars and each
  secret as `value_source.secret_key_ref` (secret + pinned version), `deletion_protection=False`
  (a destroy must be able to delete it), labels `mcp-deploy-server`/`mcp-deploy-environment`;
  it depends on the accessor members, so its first revision can read its secrets;
- `roles/run.invoker` for `allUsers` when auth mode is `bearer`, `oauth` or `none` (the server
  checks the token itself: in mode `oauth` its 401 challenge and its metadata at
  `/.well-known/oauth-protected-resource` must reach clients unauthenticated, which Google's
  front end would otherwise answer with its own 403); for `iam`, no public invoker.
Outputs: `url` (service uri + the MCP path), `service`, `service_account`.

The artifact of Cloud Run is an OCI image in a registry: `artifact_path` (the store's local copy)
is unused; the image must have been pushed (`build --push`, or the engine places it) and its
location's digest must be the request's digest. No I/O happens here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_gcp as gcp

from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import OperationError
from stacks._secrets import check_secret_values

PORT = 8080
MAX_SERVICE_NAME = 49
MAX_ACCOUNT_ID = 30
MAX_LABEL = 63
ACCOUNT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
INGRESS = {
    "all": "INGRESS_TRAFFIC_ALL",
    "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "internal-and-cloud-load-balancing": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
}
PUBLIC_AUTH_MODES = ("bearer", "oauth", "none")
_GCP_SECRET = re.compile(r"^gcp-sm://projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)$")
_LABEL_INVALID = re.compile(r"[^a-z0-9_-]")


def program(
    request: DeploymentRequest,
    secret_values: Mapping[str, str],
    /,
    *,
    artifact_path: str,  # unused: the image is deployed from its registry (see the module doc)
) -> dict[str, Any]:
    """Declare the resources of `request` (see the module doc); return the stack outputs."""
    del artifact_path
    image = _checked_image(request)
    project, region = _place(request)
    options = request.options
    ingress = INGRESS.get(str(options.get("ingress", "all")))
    if ingress is None:
        raise OperationError(
            f"unknown Cloud Run ingress {options.get('ingress')!r}",
            hint=f"use one of {', '.join(INGRESS)}",
        )
    cpu = float(options.get("cpu", 1))
    concurrency = int(options.get("concurrency", 80))
    if cpu < 1 and concurrency != 1:
        raise OperationError(
            f"Cloud Run needs concurrency 1 when cpu is below 1 (cpu {cpu:g}, "
            f"concurrency {concurrency})",
            hint="set targets.cloudrun.concurrency = 1 or cpu >= 1",
        )
    name = f"{request.server}-{request.environment}"
    if len(name) > MAX_SERVICE_NAME:
        raise OperationError(
            f"the Cloud Run service name {name!r} is longer than {MAX_SERVICE_NAME} characters",
            hint="shorten the server or environment name",
        )
    labels = {
        "mcp-deploy-server": label_value(request.server),
        "mcp-deploy-environment": label_value(request.environment),
    }
    provider = gcp.Provider(f"{name}-gcp", project=project, region=region)
    opts = pulumi.ResourceOptions(provider=provider)

    configured = options.get("service_account")
    email: pulumi.Input[str]
    if configured:
        email = str(configured)
    else:
        account = gcp.serviceaccount.Account(
            f"{name}-sa",
            account_id=account_id(name),
            display_name=f"mcp-deploy {name}",
            opts=opts,
        )
        email = account.email
    member = pulumi.Output.concat("serviceAccount:", email)

    refs, needed = _secrets(request, secret_values, name, member, labels, opts)
    variables: list[gcp.cloudrunv2.ServiceTemplateContainerEnvArgs] = [
        gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name=key, value=value)
        for key, value in sorted(request.config.items())
    ]
    variables += [
        gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(
            name=secret,
            value_source=gcp.cloudrunv2.ServiceTemplateContainerEnvValueSourceArgs(
                secret_key_ref=gcp.cloudrunv2.ServiceTemplateContainerEnvValueSourceSecretKeyRefArgs(
                    secret=secret_id, version=version
                )
            ),
        )
        for secret, (secret_id, version) in sorted(refs.items())
    ]
    service = gcp.cloudrunv2.Service(
        f"{name}-service",
        name=name,
        location=region,
        deletion_protection=False,
        ingress=ingress,
        labels=labels,
        template=gcp.cloudrunv2.ServiceTemplateArgs(
            service_account=email,
            scaling=gcp.cloudrunv2.ServiceTemplateScalingArgs(
                min_instance_count=int(options.get("min_instances", 0)),
                max_instance_count=int(options.get("max_instances", 10)),
            ),
            max_instance_request_concurrency=concurrency,
            timeout=f"{int(options.get('timeout', 300))}s",
            # below 1 cpu Cloud Run requires the first generation execution environment
            execution_environment="EXECUTION_ENVIRONMENT_GEN1" if cpu < 1 else None,
            labels=labels,
            containers=[
                gcp.cloudrunv2.ServiceTemplateContainerArgs(
                    image=image,
                    ports=gcp.cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=PORT),
                    resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                        limits={"cpu": f"{cpu:g}", "memory": str(options.get("memory", "512Mi"))},
                        # cpu only while a request is served (billed per request): what
                        # `gcloud run deploy` does, and the only mode that allows cpu below 1
                        cpu_idle=True,
                        startup_cpu_boost=True,
                    ),
                    envs=variables,
                )
            ],
        ),
        # each secret's value and accessor grant exist before the first revision starts
        opts=pulumi.ResourceOptions(provider=provider, depends_on=needed),
    )
    if request.auth.get("mode", "none") in PUBLIC_AUTH_MODES:
        gcp.cloudrunv2.ServiceIamMember(
            f"{name}-public-invoker",
            name=service.name,
            location=region,
            role="roles/run.invoker",
            member="allUsers",
            opts=opts,
        )
    return {
        "url": pulumi.Output.concat(service.uri, request.mcp_path),
        "service": service.name,
        "service_account": email,
    }


def account_id(name: str) -> str:
    """A service-account id for `name`: itself when it fits 6 to 30 characters, else its head and
    a 6-hex hash of the whole (stable), padded with `-mcp` when too short."""
    candidate = name if len(name) >= 6 else f"{name}-mcp"
    if len(candidate) > MAX_ACCOUNT_ID:
        digest = hashlib.sha256(name.encode()).hexdigest()[:6]
        candidate = f"{candidate[:23].rstrip('-')}-{digest}"
    if not ACCOUNT_ID.match(candidate):
        raise OperationError(
            f"cannot derive a service-account id from {name!r} (got {candidate!r})",
            hint="set targets.cloudrun.service_account to an existing account's email",
        )
    return candidate


def label_value(value: str) -> str:
    """A GCP label value: lowercase letters, digits, `_` and `-`, at most 63 characters."""
    return _LABEL_INVALID.sub("-", value.lower())[:MAX_LABEL]


def _secrets(
    request: DeploymentRequest,
    secret_values: Mapping[str, str],
    name: str,
    member: pulumi.Input[str],
    labels: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> tuple[dict[str, tuple[pulumi.Input[str], pulumi.Input[str]]], list[pulumi.Resource]]:
    """Secret NAME -> (secret id, pinned version) for every declared secret, and what the
    service must wait for (each created version and each accessor grant). `env:`/`file:`
    sources become a Secret Manager secret each, `gcp-sm://` ones are used in place at their
    pinned version, `aws-sm://` ones are refused. Values come only from `secret_values`."""
    declared_local = check_secret_values(request, secret_values)
    refs: dict[str, tuple[pulumi.Input[str], pulumi.Input[str]]] = {}
    needed: list[pulumi.Resource] = []
    for secret, ref in sorted(request.secrets.items()):
        secret_id: pulumi.Input[str]
        if ref.startswith("gcp-sm://"):
            match = _GCP_SECRET.match(ref)
            if match is None:
                raise OperationError(
                    f"secret {secret}: {ref!r} is not gcp-sm://projects/P/secrets/S/versions/N",
                    hint="reference a Secret Manager secret version by its number",
                )
            secret_project, secret_name, version = match.groups()
            if not version.isdigit():
                raise OperationError(
                    f"secret {secret}: version {version!r} is not a pinned version number",
                    hint="Cloud Run binds secrets by pinned version: use versions/N, "
                    "never 'latest'",
                )
            secret_id = f"projects/{secret_project}/secrets/{secret_name}"
            refs[secret] = (secret_id, version)
        elif secret in declared_local:
            stored = gcp.secretmanager.Secret(
                f"{name}-secret-{secret}",
                secret_id=f"{name}-{secret}",
                replication=gcp.secretmanager.SecretReplicationArgs(
                    auto=gcp.secretmanager.SecretReplicationAutoArgs()
                ),
                labels=dict(labels),
                opts=opts,
            )
            stored_version = gcp.secretmanager.SecretVersion(
                f"{name}-secret-{secret}-value",
                secret=stored.id,
                secret_data=pulumi.Output.secret(secret_values[secret]),
                opts=opts,
            )
            secret_id = stored.id
            refs[secret] = (secret_id, stored_version.version)
            needed.append(stored_version)
        else:
            scheme = ref.split(":", 1)[0]
            raise OperationError(
                f"secret {secret}: a {scheme} reference cannot reach a Cloud Run service",
                hint="use env:, file: or gcp-sm:// for this environment's Cloud Run secrets",
            )
        needed.append(
            gcp.secretmanager.SecretIamMember(
                f"{name}-secret-{secret}-accessor",
                secret_id=secret_id,
                role="roles/secretmanager.secretAccessor",
                member=member,
                opts=opts,
            )
        )
    return refs, needed


def _place(request: DeploymentRequest) -> tuple[str, str]:
    project, region = request.options.get("project"), request.options.get("region")
    if not project or not region:
        absent = " and ".join(k for k, v in (("project", project), ("region", region)) if not v)
        raise OperationError(
            f"no GCP {absent} for environment {request.environment}",
            hint="set targets.cloudrun.project and targets.cloudrun.region in the spec or in "
            "the environment",
        )
    return str(project), str(region)


def _checked_image(request: DeploymentRequest) -> str:
    """The pushed image by digest, after checking it is the request's artifact."""
    artifact = request.artifact
    if artifact.kind != "oci-image":
        raise OperationError(
            f"Cloud Run deploys an OCI image, not a {artifact.kind}",
            hint="build the artifact for target cloudrun",
        )
    location = artifact.location
    if not location:
        raise OperationError(
            f"the image {artifact.digest} has not been pushed: Cloud Run pulls it from a registry",
            hint="push it first (`mcp-deploy build --push`) or let the engine place it in "
            "targets.cloudrun.registry",
        )
    _, _, digest = location.rpartition("@")
    if digest != artifact.digest:
        raise OperationError(
            f"the image location {location} is not the requested artifact ({artifact.digest})",
            hint="deploy the image by the digest that was built",
        )
    return location
