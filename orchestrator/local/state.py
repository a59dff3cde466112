"""What a local-kind environment runs: one JSON file per (environment, target) under
`<project>/.mcp-deploy/state/<env>/<target>.json` (see `orchestrator.paths`).

A file is written as soon as a deployment starts (before its smoke test), so a crash of the
CLI never loses track of a running server; it is removed when the deployment is destroyed or
found gone. It holds the URL, the artifact digest, the request hash, the runtime's handle and
the secrets' source references — never a secret value.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from orchestrator.paths import ProjectPaths
from targets.base import LocalHandle


@dataclass(frozen=True)
class LocalDeployment:
    server: str
    target: str
    environment: str
    url: str
    artifact_digest: str
    request_hash: str
    started: str
    handle: dict[str, Any]
    # name -> source reference (never a value): what `logs` reads to redact the log it shows
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        """The local port the deployment listens on (a redeploy keeps it)."""
        return urlsplit(self.url).port or 0

    @property
    def local_handle(self) -> LocalHandle:
        return LocalHandle(url=self.url, data=self.handle)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "port": self.port}


class LocalState:
    def __init__(self, paths: ProjectPaths) -> None:
        self.paths = paths

    def save(self, deployment: LocalDeployment) -> None:
        path = self.paths.state_file(deployment.environment, deployment.target)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(deployment.to_dict(), indent=2, sort_keys=True) + "\n"
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=".", suffix=".partial", delete=False
        ) as handle:
            handle.write(text)
        os.replace(handle.name, path)

    def load(self, environment: str, target: str) -> LocalDeployment | None:
        path = self.paths.state_file(environment, target)
        try:
            data = json.loads(path.read_text())
            data.pop("port", None)  # derived from the URL
            return LocalDeployment(**data)
        except (OSError, ValueError, TypeError):
            return None

    def remove(self, environment: str, target: str) -> None:
        self.paths.state_file(environment, target).unlink(missing_ok=True)

    def all(self) -> list[LocalDeployment]:
        """Every deployment on record, by environment then target."""
        root = self.paths.state
        if not root.is_dir():
            return []
        found = [self.load(path.parent.name, path.stem) for path in sorted(root.glob("*/*.json"))]
        return [deployment for deployment in found if deployment is not None]
