"""Load a stored image into the Docker engine without a registry: a docker-archive stream of
the very manifest that was built (same layers, same config digest), for this machine's
platform when the artifact is an index."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.build.store import ArtifactStore
from orchestrator.errors import OperationError
from targets.base import LocalLaunch, host_architecture

if TYPE_CHECKING:
    from docker import DockerClient

_MEDIA_INDEX = ("application/vnd.oci.image.index.v1+json",)


def host_platform() -> str:
    """This machine's OCI platform (`linux/amd64` or `linux/arm64`)."""
    return "linux/arm64" if host_architecture() == "arm64" else "linux/amd64"


def _manifest(store: ArtifactStore, digest: str) -> dict[str, Any]:
    """The image manifest for this machine's platform (`digest` may name an index)."""
    document: dict[str, Any] = json.loads(store.blob_path(digest).read_bytes())
    if document.get("mediaType") in _MEDIA_INDEX or "manifests" in document:
        wanted = host_platform()
        for entry in document["manifests"]:
            found = entry.get("platform", {})
            if f"{found.get('os')}/{found.get('architecture')}" == wanted:
                return _manifest(store, entry["digest"])
        raise OperationError(
            f"the image has no {wanted} variant to run on this machine",
            hint=f'add "{wanted}" to targets.cloudrun.platforms',
        )
    return document


def load_image(engine: DockerClient, launch: LocalLaunch) -> str:
    """Load the artifact's image into the engine (once); return its image id."""
    from docker.errors import ImageNotFound

    store = ArtifactStore(launch.artifact.path.parents[2])  # <store>/blobs/sha256/<hex>
    manifest = _manifest(store, launch.artifact.digest)
    image_id = str(manifest["config"]["digest"])
    try:
        engine.images.get(image_id)
        return image_id
    except ImageNotFound:
        pass
    tag = f"mcp-deploy/{launch.server}:{launch.artifact.digest.removeprefix('sha256:')[:12]}"
    with tempfile.TemporaryFile(prefix="mcp-deploy-load-") as archive:
        _docker_archive(store, manifest, tag, archive)
        archive.seek(0)
        engine.images.load(archive)
    return image_id


def _docker_archive(store: ArtifactStore, manifest: dict[str, Any], tag: str, out: Any) -> None:
    """`docker save` format: manifest.json, the config, and each (compressed) layer."""
    import tarfile

    def add(name: str, path: Path | None = None, data: bytes | None = None) -> None:
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        if path is not None:
            info.size = path.stat().st_size
            with path.open("rb") as handle:
                archive.addfile(info, handle)
        else:
            assert data is not None
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

    config = manifest["config"]["digest"].removeprefix("sha256:")
    layers = [layer["digest"] for layer in manifest["layers"]]
    with tarfile.open(fileobj=out, mode="w") as archive:
        add(f"{config}.json", store.blob_path(manifest["config"]["digest"]))
        names = []
        for digest in layers:
            name = f"{digest.removeprefix('sha256:')}/layer.tar"
            add(name, store.blob_path(digest))
            names.append(name)
        index = [{"Config": f"{config}.json", "RepoTags": [tag], "Layers": names}]
        add("manifest.json", data=json.dumps(index).encode())
