"""The artifact a deployment ships: built (cached by its inputs), taken from the store by a
recorded digest (promotion never rebuilds), and placed where its engine can take it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

from orchestrator.artifacts import Artifact
from orchestrator.build.store import ArtifactStore
from orchestrator.errors import OperationError
from orchestrator.paths import ProjectPaths
from orchestrator.spec.loader import LoadedSpec
from targets import registry
from targets.base import Packager

Progress = Callable[[str], None]


def build_artifacts(
    loaded: LoadedSpec,
    target: str = "all",
    progress: Progress | None = None,
    push: bool = False,
    update_base: bool = False,
) -> list[Artifact]:
    """Build `target` ("all": every buildable target the spec declares); with `push`, publish
    each artifact whose target has a destination configured (`place`); with `update_base`,
    resolve the default base images pinned in the lock file again."""
    from orchestrator.build.pipeline import build

    report = progress or (lambda _step: None)
    artifacts = build(loaded, target, report, update_base=update_base)
    if push:
        artifacts = [place(loaded, artifact, report) for artifact in artifacts]
    return artifacts


def build_one(loaded: LoadedSpec, target: str, progress: Progress) -> Artifact:
    """The target's artifact, built or reused from the store."""
    (artifact,) = build_artifacts(loaded, target, progress)
    return artifact


def place(loaded: LoadedSpec, artifact: Artifact, progress: Progress) -> Artifact:
    """Publish `artifact` by digest to its target's configured destination (the registry for
    an image, `artifact_repository` for a zip or bundle); unchanged when none is configured.
    The location is remembered in the store."""
    from orchestrator.build.pipeline import build_options
    from orchestrator.oci.push import push_artifact
    from orchestrator.oci.reference import Reference

    packager = registry()[artifact.target]
    assert isinstance(packager, Packager)
    destination = packager.destination(
        build_options(loaded, artifact.target), loaded.spec.server.name
    )
    if destination is None:
        return artifact

    def step(message: str) -> None:
        progress(f"{artifact.target}: {message}")

    step(f"pushing to {destination}")
    kind = packager.artifact_type
    media_types = (
        (kind.oci_artifact_type, kind.oci_layer_media_type)
        if kind.oci_artifact_type is not None
        else None
    )
    store = ArtifactStore(ProjectPaths(loaded.root).store)
    location = push_artifact(store, artifact, Reference.parse(destination), media_types, step)
    placed = replace(artifact, location=location)
    store.record(placed)
    return placed


def stored(paths: ProjectPaths, digest: str) -> Artifact:
    """The artifact with `digest` from the project's store (for promotion and rollback);
    `OperationError` when it is not there (whole)."""
    store = ArtifactStore(paths.store)
    record = store.root / "artifacts" / (digest.partition(":")[2] + ".json")
    try:
        artifact = Artifact.from_dict(json.loads(record.read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        raise OperationError(
            f"artifact {digest} is not in this project's store ({store.root})",
            hint="build it again from the same sources, or deploy from the machine that built it",
        ) from None
    if not artifact.path.is_file():
        raise OperationError(
            f"the stored file of artifact {digest} is missing ({artifact.path})",
            hint="build it again from the same sources",
        )
    return artifact
