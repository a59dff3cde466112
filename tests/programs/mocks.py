"""Program tests run programs with the product's own offline runner
(`orchestrator.pulumi.offline`, what `plan --offline` uses) and check them for leaks here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from orchestrator.pulumi.mock_outputs import ACCOUNT, GCP_PROJECT, RUN_HASH
from orchestrator.pulumi.offline import (
    OfflineRun,
    Registered,
    plain_parts,
    run_offline,
    secret_parts,
)

__all__ = ["ACCOUNT", "GCP_PROJECT", "REGION", "RUN_HASH", "Registered", "Run", "run"]

REGION = "eu-west-1"
Run = OfflineRun
run = run_offline


def assert_no_leak(
    result: Run,
    request: Any,
    canary: str,
    values: Mapping[str, str],
    secret_version_type: str,
) -> None:
    """The canary leak detector: `canary` (in every value of `values`) appears in no plain
    input of any resource, in no stack output and not in the request; every value appears under
    a secret marker, and only resources of `secret_version_type` take a secret input at all."""
    leaks = [
        (r.type, r.name)
        for r in result.resources
        if any(canary in str(part) for part in plain_parts(r.inputs))
    ]
    assert leaks == []
    protected = sorted(
        str(part)
        for r in result.resources
        for part in secret_parts(r.inputs)
        if canary in str(part)
    )
    assert protected == sorted(values.values())
    assert all(
        r.type == secret_version_type for r in result.resources if list(secret_parts(r.inputs))
    )
    assert canary not in json.dumps(result.outputs)
    assert canary not in json.dumps(request.to_dict())
