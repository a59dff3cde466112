"""`DeploymentRequest`: everything an engine needs to deploy one artifact to one environment on
one target, resolved and frozen. Secrets are references (`env:NAME`, `file:PATH`, `aws-sm://…`,
`gcp-sm://…`), never values: a request can be printed, stored in a record and hashed.

This module imports nothing of the project: the Pulumi programs in `stacks/` depend on it alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ArtifactRef:
    """The artifact by identity: its digest (and where it was published, if it was)."""

    kind: str
    target: str
    digest: str
    size: int
    location: str | None = None


@dataclass(frozen=True)
class DeploymentRequest:
    """One deployment, fully resolved. `options` are the target's effective options (JSON),
    `config` plain environment variables, `secrets` env var name -> source reference, `auth`
    the spec's auth table, `smoke` the spec's smoke table. `engine` is the environment's kind."""

    server: str
    environment: str
    engine: str
    target: str
    artifact: ArtifactRef
    python: str
    mcp_path: str
    config: Mapping[str, str]
    secrets: Mapping[str, str]
    options: Mapping[str, Any]
    auth: Mapping[str, Any]
    smoke: Mapping[str, Any] = field(default_factory=dict)
    promoted_from: str | None = None
    # `server.runtime`: "python" (`python` is its minor), "binary" (a Linux executable) or
    # "node" (`runtime_version` is its major).
    runtime: str = "python"
    runtime_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, keys sorted where order carries no meaning. `runtime` is left out
        when it is "python" and `runtime_version` when empty, so requests recorded before
        they existed hash the same."""
        data = asdict(self)
        if data["runtime"] == "python":
            del data["runtime"]
        if not data["runtime_version"]:
            del data["runtime_version"]
        for key in ("config", "secrets", "options", "auth", "smoke"):
            data[key] = dict(sorted(data[key].items()))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentRequest:
        values = dict(data)
        values["artifact"] = ArtifactRef(**values["artifact"])
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**known)

    @property
    def request_hash(self) -> str:
        """sha256 of the canonical request: equal hashes deploy the very same thing."""
        return _hash(self.to_dict())

    @property
    def config_hash(self) -> str:
        """sha256 of what the environment configures (config, secret references, options,
        auth): the same artifact with the same config hash is the same deployment."""
        data = self.to_dict()
        return _hash({key: data[key] for key in ("config", "secrets", "options", "auth")})


def _hash(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
