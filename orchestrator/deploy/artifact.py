"""The artifact a deployment ships: built (cached by its inputs) and placed where its engine
can take it (`build --push`). A deployment names it by digest from then on: a rollback deploys
the digest its record holds, and never rebuilds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from orchestrator.artifacts import Artifact
from orchestrator.build.store import ArtifactStore
from orchestrator.paths import ProjectPaths
from orchestrator.spec.loader import LoadedSpec
from targets import registry
from targets.base import Packager, Target

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


def _destination(loaded: LoadedSpec, artifact: Artifact) -> tuple[Target, str | None]:
    """The artifact's target and the `registry/repository` it publishes to."""
    from orchestrator.build.pipeline import build_options

    target = registry()[artifact.target]
    assert isinstance(target, Packager)
    options = build_options(loaded, artifact.target)
    return target, target.destination(options, loaded.spec.server.name)


def place(
    loaded: LoadedSpec, artifact: Artifact, progress: Progress, to: str | None = None
) -> Artifact:
    """Publish `artifact` by digest to `to` (`registry/repository`), default its target's
    configured destination (the registry for an image, `artifact_repository` for a zip or
    bundle); unchanged when none is configured. The location is remembered in the store."""
    from orchestrator.oci.push import push_artifact
    from orchestrator.oci.reference import Reference

    packager, configured = _destination(loaded, artifact)
    destination = to or configured
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


def where_placed(loaded: LoadedSpec, artifact: Artifact) -> Artifact:
    """`artifact` with the location `place` would give it (`registry/repo@digest`), without
    pushing; unchanged when it has a location or its target no destination. For plans."""
    from orchestrator.oci.reference import Reference

    if artifact.location is not None:
        return artifact
    _packager, destination = _destination(loaded, artifact)
    if destination is None:
        return artifact
    location = str(Reference.parse(destination).with_digest(artifact.digest))
    return replace(artifact, location=location)
