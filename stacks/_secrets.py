"""What every program checks of the secret values the engine hands it (no provider SDK here)."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import OperationError

LOCAL_SOURCES = ("env:", "file:")


def check_secret_values(request: DeploymentRequest, secret_values: Mapping[str, str]) -> set[str]:
    """The names of the request's `env:`/`file:` secrets (the ones the engine reads at the
    last moment), which `secret_values` must hold exactly: `OperationError` naming what is
    missing or extra otherwise."""
    declared = {n for n, ref in request.secrets.items() if ref.startswith(LOCAL_SOURCES)}
    missing = sorted(declared - set(secret_values))
    extra = sorted(set(secret_values) - declared)
    if missing or extra:
        raise OperationError(
            "the secret values do not match the request's env:/file: secrets"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not declared as env:/file: {', '.join(extra)}" if extra else ""),
            hint="the engine must read exactly the env:/file: secrets of the request",
        )
    return declared
