"""What every program asks of the request's target options (no provider SDK here)."""

from __future__ import annotations

from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import OperationError


def required_option(request: DeploymentRequest, key: str, what: str) -> str:
    """The target option `key` (`what` names it for people), or `OperationError` saying where
    to set it."""
    value = request.options.get(key)
    if not value:
        raise OperationError(
            f"no {what} for environment {request.environment}",
            hint=f"set targets.{request.target}.{key} in the spec or in the environment",
        )
    return str(value)
