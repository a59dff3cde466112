"""Deployment records: what was deployed where, from which artifact, by whom, and whether it
was proven.

One `DeploymentRecord` per deploy attempt, written before the engine applies it (status
`applying`), again once it runs (`applied`, with its URL) and once its smoke test ends
(`verified`, `failed`, or `unverified` when interrupted), so a deployment never runs
unrecorded, however the CLI is stopped. Records hold
references and hashes only, never a secret value. `RecordStore` keeps them as one JSON file
each under `<project>/.mcp-deploy/records/<env>/<target>/`, named so that names sort by time;
every write is atomic (a temporary file renamed over the name).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

Status = Literal["applying", "applied", "verified", "unverified", "failed"]


@dataclass(frozen=True)
class DeploymentRecord:
    """One deployment. `request` is the whole `DeploymentRequest` (secrets as references), so a
    record can be deployed again (rollback, promotion) without the spec. `replaces` is the id
    of the record that was current before; `promoted_from` the environment the artifact came
    from, when promoted."""

    id: str
    server: str
    target: str
    environment: str
    engine: str
    artifact_kind: str
    artifact_digest: str
    artifact_location: str | None
    request_hash: str
    config_hash: str
    url: str
    time: str
    actor: str
    git_commit: str | None
    status: Status
    smoke: dict[str, Any] | None
    promoted_from: str | None
    replaces: str | None
    request: dict[str, Any]
    # what made it: "deploy", "promote" or "rollback" (None in records older than the field)
    action: str | None = "deploy"
    # sha256 of the spec file's bytes at the time (None when unknown)
    spec_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentRecord:
        known: dict[str, Any] = {name: data.get(name) for name in cls.__dataclass_fields__}
        return cls(**known)

    def with_smoke(self, status: Status, smoke: dict[str, Any] | None) -> DeploymentRecord:
        return replace(self, status=status, smoke=smoke)

    @property
    def passed(self) -> bool:
        """True when its smoke test passed."""
        return self.status == "verified"


def record_id(when: str, digest: str) -> str:
    """A record's id: its time (sortable) and the artifact digest's first 12 hex digits."""
    stamp = when.replace(":", "").replace("-", "")
    return f"{stamp}-{digest.removeprefix('sha256:')[:12]}"


def actor() -> str:
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
    """Records on the local file system, one file per deploy attempt."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, record: DeploymentRecord) -> Path:
        """Store `record` under its id (replacing an earlier version of the same record); the
        file appears whole or not at all."""
        folder = self.root / record.environment / record.target
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{record.id}.json"
        text = json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n"
        with tempfile.NamedTemporaryFile(
            "w", dir=folder, prefix=".", suffix=".partial", delete=False, encoding="utf-8"
        ) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
        return path

    def history(self, environment: str, target: str) -> list[DeploymentRecord]:
        """Records of `target` in `environment`, oldest first (unreadable files skipped)."""
        folder = self.root / environment / target
        if not folder.is_dir():
            return []
        records = []
        for path in sorted(folder.glob("*.json")):
            try:
                records.append(DeploymentRecord.from_dict(json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return records

    def find(self, environment: str, target: str, record_id: str) -> DeploymentRecord | None:
        """The record `record_id` (a unique prefix is enough) of `target` in `environment`."""
        matches = [r for r in self.history(environment, target) if r.id.startswith(record_id)]
        return matches[0] if len(matches) == 1 else None

    def latest_passed(self, environment: str, target: str) -> DeploymentRecord | None:
        """The newest record whose smoke test passed."""
        passed = [r for r in self.history(environment, target) if r.passed]
        return passed[-1] if passed else None

    def latest(self, environment: str, target: str) -> DeploymentRecord | None:
        """The newest record that was not a failed attempt: what was deployed last."""
        records = [r for r in self.history(environment, target) if r.status != "failed"]
        return records[-1] if records else None

    def environments(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(path.name for path in self.root.iterdir() if path.is_dir())
