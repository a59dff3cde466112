"""What runs locally: one JSON file per target under `<project>/.mcp-deploy/local/`.

A file is written as soon as a deployment starts (before its smoke test), so a crash of the
CLI never loses track of a running server; it is removed when the deployment is destroyed or
found gone. It holds the URL, the artifact digest and the runner's handle — never a secret.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from targets.base import LocalHandle


@dataclass(frozen=True)
class LocalDeployment:
    server: str
    target: str
    environment: str
    url: str
    artifact_digest: str
    started: str
    handle: dict[str, Any]

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
    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, target: str) -> Path:
        """Where a target's local deployment keeps its files (logs)."""
        return self.root / target

    def save(self, deployment: LocalDeployment) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{deployment.target}.json"
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(deployment.to_dict(), indent=2, sort_keys=True) + "\n")
        partial.rename(path)

    def load(self, target: str) -> LocalDeployment | None:
        path = self.root / f"{target}.json"
        try:
            data = json.loads(path.read_text())
            data.pop("port", None)  # derived from the URL
            return LocalDeployment(**data)
        except (OSError, ValueError, TypeError):
            return None

    def remove(self, target: str) -> None:
        (self.root / f"{target}.json").unlink(missing_ok=True)

    def all(self) -> list[LocalDeployment]:
        if not self.root.is_dir():
            return []
        found = [self.load(path.stem) for path in sorted(self.root.glob("*.json"))]
        return [deployment for deployment in found if deployment is not None]
