"""`Artifact`: one built, immutable deployable. Its identity is its digest."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Artifact:
    """A built artifact.

    `digest` is `sha256:<hex>` of the artifact's bytes (for an image: of its manifest or
    index); `inputs_hash` identifies what it was built from (sources, lock, platform, Python,
    shim), so an unchanged input set can be recognised without rebuilding. `path` is where it
    sits in the local store; `location` is `registry/repo@sha256:…` once pushed.
    """

    kind: str  # the target's `ArtifactType.kind`
    target: str
    digest: str
    size: int
    inputs_hash: str
    path: Path
    location: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Artifact:
        return cls(**{**data, "path": Path(data["path"])})
