"""`plan --offline`: a target's program run under Pulumi's mock runtime, shown as the
resources it would declare with their inputs, without a CLI, credentials or a cloud.

Secret values are never read: each `env:`/`file:` secret is handed to the program as the
placeholder `[secret]`, and every input under Pulumi's secret marker is shown as `[secret]`.
Values the cloud computes (ARNs, URLs, versions) come from `orchestrator.pulumi.mock_outputs`:
fake but recognisable (account 123456789012).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc

from orchestrator.deploy.engine import OfflinePlan, PlannedResource
from orchestrator.deploy.request import DeploymentRequest
from orchestrator.pulumi.offline import run_offline

SECRET = "[secret]"
LOCAL_SOURCES = ("env:", "file:")


def plan_offline(request: DeploymentRequest, artifact_path: Path) -> OfflinePlan:
    """Run the request's program under mocks (`OperationError` when the program refuses the
    request, as it would in a deploy)."""
    import stacks

    program = stacks.program_for(request.target)
    placeholders = {
        name: SECRET for name, ref in request.secrets.items() if ref.startswith(LOCAL_SOURCES)
    }
    run = run_offline(lambda: program(request, placeholders, artifact_path=str(artifact_path)))
    resources = [
        PlannedResource(r.type, r.name, {k: shown(v) for k, v in sorted(r.inputs.items())})
        for r in run.resources
    ]
    outputs = {
        name: SECRET if name in run.secret_outputs else shown(value)
        for name, value in run.outputs.items()
    }
    return OfflinePlan(resources, outputs)


def shown(value: Any) -> Any:
    """`value` made JSON-ready for people: secrets as `[secret]`, assets and archives by path,
    whole-number floats as integers (the mock runtime turns every number into a float)."""
    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, Mapping):
        return {str(k): shown(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list | tuple):
        return [shown(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"file": value.path}
    if isinstance(value, pulumi.StringAsset):
        return {"text": f"{len(value.text)} characters"}
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": sorted(value.assets)}
    if value is None or isinstance(value, str | int | bool | float):
        return value
    return str(value)
