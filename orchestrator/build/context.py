"""What a target's packager gets: the spec, where to store artifacts, and a progress callback."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.build.store import ArtifactStore

if TYPE_CHECKING:
    from orchestrator.artifacts import Artifact
    from orchestrator.spec.loader import LoadedSpec


def _silent(_step: str) -> None:
    return None


@dataclass(frozen=True)
class BuildContext:
    """Inputs of one build. Build options come from the spec's top level only: an artifact
    is the same for every environment.

    `update_base`: resolve what the lock file (`mcp-deploy.lock`) pins for a default base
    image again and rewrite its entry, instead of using the pinned digest (a base set in
    the spec is never resolved and never locked)."""

    loaded: LoadedSpec
    store: ArtifactStore
    progress: Callable[[str], None] = field(default=_silent)
    update_base: bool = False

    def stored(self, kind: str, inputs: InputsHash, what: str) -> tuple[str, Artifact | None]:
        """(the inputs' hash, the stored artifact of `kind` built from exactly them, if the
        store has it intact; `progress` then says the `what` is reused)."""
        inputs_hash = inputs.hexdigest()
        cached = self.store.find(kind, inputs_hash, self.progress)
        if cached is not None:
            self.progress(f"unchanged inputs: reusing the stored {what}")
        return inputs_hash, cached

    @property
    def project_dir(self) -> Path:
        return self.loaded.root

    @property
    def source_dir(self) -> Path:
        return (self.loaded.root / self.loaded.spec.server.source).resolve()


class InputsHash:
    """Accumulates everything an artifact is built from into one sha256."""

    def __init__(self, kind: str) -> None:
        self._hash = hashlib.sha256(kind.encode())

    def add(self, label: str, data: bytes | str) -> None:
        payload = data.encode() if isinstance(data, str) else data
        self._hash.update(f"\0{label}\0{len(payload)}\0".encode())
        self._hash.update(payload)

    def add_file(self, label: str, path: Path) -> None:
        self.add(label, path.read_bytes())

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def default_store(loaded: LoadedSpec) -> ArtifactStore:
    """`<project>/.mcp-deploy/store`."""
    from orchestrator.paths import ProjectPaths

    return ArtifactStore(ProjectPaths(loaded.root).store)
