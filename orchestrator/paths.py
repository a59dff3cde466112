"""The one owner of mcp-deploy's places on disk.

Per project (next to the spec): `<project>/.mcp-deploy/` holds `store/` (built artifacts, an OCI
image layout), `records/<env>/<target>/` (deployment records), `state/<env>/<target>.json` (what
a local-kind environment runs) with `state/<env>/<target>/` (its logs), and `locks/` (one lock
per environment and target). Per machine: the cache (`cache_root()`), shared by projects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = ".mcp-deploy"


def cache_root() -> Path:
    """MCP_DEPLOY_CACHE_DIR, else $XDG_CACHE_HOME/mcp-deploy, else ~/.cache/mcp-deploy."""
    explicit = os.environ.get("MCP_DEPLOY_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mcp-deploy"


@dataclass(frozen=True)
class ProjectPaths:
    """The `.mcp-deploy` folder of the project whose spec lives in `root`."""

    root: Path

    @property
    def base(self) -> Path:
        return self.root / PROJECT_DIR

    @property
    def store(self) -> Path:
        return self.base / "store"

    @property
    def records(self) -> Path:
        return self.base / "records"

    @property
    def state(self) -> Path:
        return self.base / "state"

    def state_file(self, environment: str, target: str) -> Path:
        """What a local-kind environment runs for `target` (JSON, no secrets)."""
        return self.state / environment / f"{target}.json"

    def deployment_dir(self, environment: str, target: str) -> Path:
        """The running deployment's own files (its log)."""
        return self.state / environment / target

    def lock_file(self, environment: str, target: str) -> Path:
        return self.base / "locks" / f"{environment}.{target}.lock"
