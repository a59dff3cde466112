"""Deployment records: what was deployed where, from which artifact, and whether it worked.

Every successful deploy writes one `DeploymentRecord`; status, promotion and rollback read
them. Records hold references and hashes only — never a secret value. `RecordStore` keeps them
as one JSON file each under `<project>/.mcp-deploy/records/<env>/<target>/`, append-only, named
so that names sort by time.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.environments import ResolvedEnvironment
    from orchestrator.spec.loader import LoadedSpec


@dataclass(frozen=True)
class DeploymentRecord:
    """One deployment. `config_hash` covers config values, secret *references*, target options
    and auth mode, so two records with the same digest and hash deployed the same thing."""

    server: str
    target: str
    environment: str
    artifact_kind: str
    artifact_digest: str
    config_hash: str
    url: str
    time: str
    who: str
    git_commit: str | None
    smoke: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentRecord:
        known: dict[str, Any] = {name: data.get(name) for name in cls.__dataclass_fields__}
        return cls(**known)


def config_hash(resolved: ResolvedEnvironment) -> str:
    """sha256 of the environment's effective configuration, secrets as references."""
    document = {
        "config": dict(resolved.config),
        "secrets": {name: str(ref) for name, ref in resolved.secrets.items()},
        "options": resolved.options.model_dump(mode="json"),
        "auth": resolved.auth.model_dump(mode="json"),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def who() -> str:
    """`user@host` of whoever deploys (CI runners show up as theirs)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def git_commit(directory: Path) -> str | None:
    """HEAD of the git work tree holding `directory`, or None outside git."""
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def now() -> str:
    """UTC time with microseconds, ISO 8601 (sorts as text)."""
    seconds = time.time()
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1e6):06d}Z"
    )


class RecordStore:
    """Append-only records on the local file system."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_project(cls, loaded: LoadedSpec) -> RecordStore:
        return cls(loaded.root / ".mcp-deploy" / "records")

    def write(self, record: DeploymentRecord) -> Path:
        """Store `record`; the file appears whole or not at all."""
        folder = self.root / record.environment / record.target
        folder.mkdir(parents=True, exist_ok=True)
        stamp = record.time.replace(":", "").replace("-", "")
        path = folder / f"{stamp}-{record.artifact_digest.removeprefix('sha256:')[:12]}.json"
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n")
        partial.rename(path)
        return path

    def history(self, environment: str, target: str) -> list[DeploymentRecord]:
        """Records of `target` in `environment`, oldest first."""
        folder = self.root / environment / target
        if not folder.is_dir():
            return []
        return [
            DeploymentRecord.from_dict(json.loads(path.read_text()))
            for path in sorted(folder.glob("*.json"))
        ]

    def latest(self, environment: str, target: str) -> DeploymentRecord | None:
        records = self.history(environment, target)
        return records[-1] if records else None
