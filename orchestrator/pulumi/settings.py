"""Where a cloud deployment's Pulumi stack lives and how its state keeps secrets.

One stack per (server, target, environment): project `mcp-deploy-{server}`, stack
`{environment}.{target}`. The state backend and the secrets provider come from the
environment's table in the spec (`backend`, `secrets_provider`), else from Pulumi's own
variables (`PULUMI_BACKEND_URL`), else the defaults: a file backend under the project
(`.mcp-deploy/pulumi`) and a passphrase (`PULUMI_CONFIG_PASSPHRASE` or
`PULUMI_CONFIG_PASSPHRASE_FILE`). A Pulumi Cloud backend keeps secrets with the service's own
provider unless one is named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import Issue
from orchestrator.paths import ProjectPaths

PASSPHRASE = "passphrase"
PASSPHRASE_VARIABLES = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
# Backends Pulumi supports (https://www.pulumi.com/docs/iac/concepts/state-and-backends/).
BACKEND_SCHEMES = ("file://", "s3://", "gs://", "azblob://", "https://", "http://")
SECRETS_PROVIDER_SCHEMES = ("awskms://", "gcpkms://", "azurekeyvault://", "hashivault://")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class StackSettings:
    """Everything that names and places one stack. `secrets_provider` None: the backend's
    default (Pulumi Cloud's own service)."""

    project: str
    stack: str
    backend_url: str
    secrets_provider: str | None
    work_dir: Path

    @property
    def cloud_backend(self) -> bool:
        """True for Pulumi Cloud (or a self-hosted Pulumi service)."""
        return self.backend_url.startswith(("https://", "http://"))


def stack_settings(
    paths: ProjectPaths,
    server: str,
    environment: str,
    target: str,
    backend: str | None,
    secrets_provider: str | None,
    environ: Mapping[str, str],
) -> StackSettings:
    """The stack of (server, environment, target) with the environment's settings applied."""
    backend_url = backend or environ.get("PULUMI_BACKEND_URL") or _default_backend(paths)
    if secrets_provider is None and not backend_url.startswith(("https://", "http://")):
        secrets_provider = PASSPHRASE
    return StackSettings(
        project=f"mcp-deploy-{server}",
        stack=_UNSAFE.sub("-", f"{environment}.{target}"),
        backend_url=backend_url,
        secrets_provider=secrets_provider,
        work_dir=paths.deployment_dir(environment, target),
    )


def _default_backend(paths: ProjectPaths) -> str:
    return (paths.base / "pulumi").resolve().as_uri()


def settings_issues(
    settings: StackSettings, environment: str, environ: Mapping[str, str]
) -> list[Issue]:
    """What stops the CLI from opening the stack that can be seen before it runs: an unknown
    backend or secrets provider scheme, a passphrase provider without its variable."""
    issues: list[Issue] = []
    where = f"environments.{environment}"
    if not settings.backend_url.startswith(BACKEND_SCHEMES):
        issues.append(
            Issue(
                f"{where}.backend",
                f"'{settings.backend_url}' is not a Pulumi state backend URL",
                "use file://DIR, s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX], azblob://CONTAINER "
                "or https://api.pulumi.com",
            )
        )
    provider = settings.secrets_provider
    if (
        provider is not None
        and provider != PASSPHRASE
        and not provider.startswith(SECRETS_PROVIDER_SCHEMES)
    ):
        issues.append(
            Issue(
                f"{where}.secrets_provider",
                f"'{provider}' is not a Pulumi secrets provider",
                "use passphrase, awskms://KEY?region=R, gcpkms://projects/P/locations/L/"
                "keyRings/K/cryptoKeys/C, azurekeyvault://… or hashivault://…",
            )
        )
    if provider == PASSPHRASE and not any(name in environ for name in PASSPHRASE_VARIABLES):
        issues.append(
            Issue(
                f"environments.{environment}.secrets_provider",
                "the stack's state encrypts secrets with a passphrase, and neither "
                "PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set",
                "export PULUMI_CONFIG_PASSPHRASE (the same value on every runner: keep it in "
                'your CI\'s secret store), or set secrets_provider = "awskms://…" / '
                '"gcpkms://…" on the environment',
            )
        )
    return issues


# The credentials a state backend or secrets provider is reached with (glob patterns of
# environment variables), by URL scheme.
_STATE_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "s3://": ("AWS_*",),
    "awskms://": ("AWS_*",),
    "gs://": ("GOOGLE_*", "CLOUDSDK_*", "GCLOUD_*"),
    "gcpkms://": ("GOOGLE_*", "CLOUDSDK_*", "GCLOUD_*"),
    "azblob://": ("AZURE_*",),
    "azurekeyvault://": ("AZURE_*",),
    "hashivault://": ("VAULT_*",),
}


def state_variables(settings: StackSettings) -> tuple[str, ...]:
    """The environment variables the CLI needs to reach the stack's backend and secrets
    provider (an `s3://` backend needs AWS credentials even for a Cloud Run stack)."""
    found: list[str] = []
    for url in (settings.backend_url, settings.secrets_provider or ""):
        for scheme, patterns in _STATE_CREDENTIALS.items():
            if url.startswith(scheme):
                found += [p for p in patterns if p not in found]
    return tuple(found)
