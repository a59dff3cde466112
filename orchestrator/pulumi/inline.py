"""The inline Pulumi program the engine runs: the target's program, its outputs exported, and
the deployment itself as the output `mcp_deploy` (request, digest, time, record), so another
machine with the same backend can read what runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import OperationError
from orchestrator.records import now

DEPLOYMENT_OUTPUT = "mcp_deploy"


def inline_program(
    program: Any,
    request: DeploymentRequest,
    secret_values: Mapping[str, str],
    artifact_path: str,
    record: Mapping[str, Any] | None,
    refused: Callable[[OperationError], None],
) -> Callable[[], None]:
    """The function Pulumi runs as the stack's program. When the target's `program` refuses
    the request (`OperationError`), `refused` gets the error (so the engine can show it
    instead of the CLI's traceback) and the update fails."""

    def run() -> None:
        import pulumi

        try:
            outputs = program(request, secret_values, artifact_path=artifact_path)
        except OperationError as error:
            refused(error)
            raise pulumi.RunError(error.message) from None
        for name, value in outputs.items():
            pulumi.export(name, value)
        deployment = {
            "request": request.to_dict(),
            "request_hash": request.request_hash,
            "artifact_digest": request.artifact.digest,
            "deployed_at": now(),
            "record": dict(record) if record is not None else None,
        }
        pulumi.export(DEPLOYMENT_OUTPUT, json.dumps(deployment, sort_keys=True))

    return run


def read_deployment(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The `mcp_deploy` output of a stack's outputs as a dict; empty when it is missing or not
    one (a stack mcp-deploy did not write)."""
    try:
        found = json.loads(str(outputs.get(DEPLOYMENT_OUTPUT) or "{}"))
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
