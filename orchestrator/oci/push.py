"""Publish stored artifacts by digest through the OCI distribution API.

Images go to `<registry>/<server>` exactly as built (manifest or index, same digest). A Lambda
zip or a Workers bundle goes up as an OCI artifact: a manifest whose single layer is the file,
with an `artifactType` naming the kind. Either way the result is `registry/repo@sha256:…`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from orchestrator.artifacts import Artifact
from orchestrator.build.store import ArtifactStore, bytes_digest
from orchestrator.errors import OperationError
from orchestrator.oci import media
from orchestrator.oci.image import canonical
from orchestrator.oci.reference import Reference
from orchestrator.oci.registry import RegistryClient

EMPTY_CONFIG = b"{}"


def push_artifact(
    store: ArtifactStore,
    artifact: Artifact,
    repository: Reference,
    media_types: tuple[str, str] | None,
    progress: Callable[[str], None] = lambda _step: None,
) -> str:
    """Push `artifact` to `repository` (no tag needed); returns `registry/repo@digest`.
    `media_types` is (artifactType, layer media type) for a file artifact, None for an image
    (pushed as built)."""
    client = RegistryClient.for_reference(repository)
    if media_types is None:
        digest = _push_manifest_tree(
            client, store, repository.repository, artifact.digest, progress
        )
    else:
        digest = _push_file_artifact(
            client, store, repository.repository, artifact, media_types, progress
        )
    return str(repository.with_digest(digest))


def _push_blob(
    client: RegistryClient,
    store: ArtifactStore,
    repository: str,
    digest: str,
    progress: Callable[[str], None],
) -> None:
    """Upload one stored blob unless the registry has it. Its bytes are checked against
    `digest` first: a damaged blob is discarded from the store and the push stops
    (`OperationError`), so the next build makes it again instead of the registry refusing
    it as DIGEST_INVALID."""
    data = store.blob_path(digest).read_bytes()
    if bytes_digest(data) != digest:
        store.discard_blob(digest)
        raise OperationError(
            f"the stored blob {digest} was damaged (its bytes no longer match its digest); "
            "it has been discarded",
            hint="run the build again: it makes the artifact again, then push",
        )
    uploaded = client.push_blob(repository, digest, data)
    progress(f"{'uploaded' if uploaded else 'already there'}: {digest[:19]} ({len(data)} bytes)")


def _push_manifest_tree(
    client: RegistryClient,
    store: ArtifactStore,
    repository: str,
    digest: str,
    progress: Callable[[str], None],
) -> str:
    data = store.blob_path(digest).read_bytes()
    document = json.loads(data)
    media_type = document.get("mediaType", media.OCI_MANIFEST)
    for child in document.get("manifests", []):
        _push_manifest_tree(client, store, repository, child["digest"], progress)
    if "config" in document:
        for descriptor in (document["config"], *document["layers"]):
            _push_blob(client, store, repository, descriptor["digest"], progress)
    return client.put_manifest(repository, digest, data, media_type)


def _push_file_artifact(
    client: RegistryClient,
    store: ArtifactStore,
    repository: str,
    artifact: Artifact,
    media_types: tuple[str, str],
    progress: Callable[[str], None],
) -> str:
    artifact_type, layer_type = media_types
    config_digest, _ = store.add_bytes(EMPTY_CONFIG)
    _push_blob(client, store, repository, config_digest, progress)
    _push_blob(client, store, repository, artifact.digest, progress)
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": config_digest,
                "size": len(EMPTY_CONFIG),
            },
            "layers": [
                {
                    "mediaType": layer_type,
                    "digest": artifact.digest,
                    "size": artifact.size,
                    "annotations": {"org.opencontainers.image.title": f"{artifact.target}.zip"},
                }
            ],
        }
    )
    digest, _ = store.add_bytes(manifest)
    return client.put_manifest(repository, digest, manifest, media.OCI_MANIFEST)
