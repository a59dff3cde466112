"""Where a build came from: the git revision and remote of the project, when it has them."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and value else None


def source_labels(directory: Path) -> dict[str, str]:
    """OCI annotation labels for the git revision and remote of `directory` (if any)."""
    labels: dict[str, str] = {}
    revision = _git(directory, "rev-parse", "HEAD")
    if revision:
        labels["org.opencontainers.image.revision"] = revision
    remote = _git(directory, "config", "--get", "remote.origin.url")
    if remote:
        labels["org.opencontainers.image.source"] = remote
    return labels
