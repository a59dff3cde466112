"""Assemble OCI images from a base image and new layers, without a container daemon.

A base is pulled by digest (its blobs land in the content-addressed store once, and a stored
blob is used again only while it checks out against its digest and size); new layers
are appended; the config is derived from the base's with our changes; manifests and indexes
are serialised canonically (sorted keys, no spaces) so the same inputs give the same digest.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.build.archive import Layer
from orchestrator.build.store import ArtifactStore, BlobState
from orchestrator.errors import OperationError
from orchestrator.oci import media
from orchestrator.oci.reference import Reference
from orchestrator.oci.registry import RegistryClient


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class BaseImage:
    """One platform's manifest of a base image, with its config, all blobs in the store
    (`reference` None: `scratch`, the empty image)."""

    reference: Reference | None
    config: dict[str, Any]
    layers: list[dict[str, Any]]


def scratch(platform: str) -> BaseImage:
    """The empty base (`FROM scratch`) for `platform` ("linux/amd64"): no layer, no file."""
    os_name, architecture = platform.split("/", 1)
    config = {
        "architecture": architecture,
        "os": os_name,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    return BaseImage(None, config, [])


def pull_base(reference: Reference, platform: str, store: ArtifactStore) -> BaseImage:
    """Fetch the `platform` image of a digest-pinned base into the store (cached by digest)."""
    if reference.digest is None:
        raise OperationError(f"base image {reference} is not pinned by digest")
    client = RegistryClient.for_reference(reference)
    manifest = _load_manifest(client, store, reference, reference.digest)
    if manifest.get("mediaType") in media.INDEXES or "manifests" in manifest:
        wanted_os, wanted_arch = platform.split("/", 1)
        choices = [
            m
            for m in manifest["manifests"]
            if m.get("platform", {}).get("os") == wanted_os
            and m.get("platform", {}).get("architecture") == wanted_arch
        ]
        if not choices:
            raise OperationError(
                f"base image {reference} has no {platform} image",
                hint="pick a multi-platform base, or change targets.cloudrun.platforms",
            )
        manifest = _load_manifest(client, store, reference, choices[0]["digest"])
    config_digest = manifest["config"]["digest"]
    _ensure_blob(client, store, reference, config_digest, manifest["config"].get("size"))
    config = json.loads(store.blob_path(config_digest).read_bytes())
    if f"{config.get('os')}/{config.get('architecture')}" != platform:
        raise OperationError(
            f"base image {reference} is {config.get('os')}/{config.get('architecture')}, "
            f"not {platform}",
            hint="pin the digest of the right platform's image (or of a multi-platform index)",
        )
    layers = []
    for layer in manifest["layers"]:
        _ensure_blob(client, store, reference, layer["digest"], layer.get("size"))
        layers.append(
            {
                "mediaType": media.TO_OCI.get(layer["mediaType"], layer["mediaType"]),
                "digest": layer["digest"],
                "size": layer["size"],
            }
        )
    return BaseImage(reference, config, layers)


def _load_manifest(
    client: RegistryClient, store: ArtifactStore, reference: Reference, digest: str
) -> dict[str, Any]:
    if store.check_blob(digest) is not BlobState.INTACT:
        data, _media_type, _digest = client.get_manifest(reference.repository, digest)
        store.add_bytes(data)
    document: dict[str, Any] = json.loads(store.blob_path(digest).read_bytes())
    return document


def _ensure_blob(
    client: RegistryClient,
    store: ArtifactStore,
    reference: Reference,
    digest: str,
    size: int | None = None,
) -> None:
    """Blob `digest` in the store, checked (digest, and `size` when known); fetched (and
    verified) when missing or damaged."""
    if store.check_blob(digest, size) is not BlobState.INTACT:
        store.add_bytes(client.fetch_blob(reference.repository, digest))


@dataclass(frozen=True)
class ImageChanges:
    """What we change in the base's config."""

    env: dict[str, str]
    entrypoint: list[str]
    working_dir: str
    user: str
    labels: dict[str, str]
    exposed_port: int
    created: int  # seconds since the epoch


def assemble(
    base: BaseImage, layers: list[Layer], changes: ImageChanges, store: ArtifactStore
) -> tuple[str, int]:
    """Write config and manifest for `base` + `layers` into the store; (digest, size)."""
    config = copy.deepcopy(base.config)
    run = config.setdefault("config", {})
    env = dict(item.split("=", 1) for item in run.get("Env") or [] if "=" in item)
    env.update(changes.env)
    run["Env"] = [f"{key}={value}" for key, value in env.items()]
    run["Entrypoint"] = changes.entrypoint
    run["Cmd"] = None
    run["WorkingDir"] = changes.working_dir
    run["User"] = changes.user
    run["Labels"] = {**(run.get("Labels") or {}), **changes.labels}
    run["ExposedPorts"] = {f"{changes.exposed_port}/tcp": {}}
    run["StopSignal"] = "SIGTERM"
    created = datetime.fromtimestamp(changes.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config["created"] = created
    config["rootfs"] = {
        "type": "layers",
        "diff_ids": [
            *config.get("rootfs", {}).get("diff_ids", []),
            *(layer.diff_id for layer in layers),
        ],
    }
    config["history"] = [
        *config.get("history", []),
        *({"created": created, "created_by": f"mcp-deploy: {layer.path.name}"} for layer in layers),
    ]
    config_digest, config_size = store.add_bytes(canonical(config))
    for layer in layers:
        store.add_file_copy(layer.path, layer.digest)
    manifest = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": media.OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [
            *base.layers,
            *(
                {"mediaType": media.OCI_LAYER_GZIP, "digest": layer.digest, "size": layer.size}
                for layer in layers
            ),
        ],
    }
    return store.add_bytes(canonical(manifest))


def index(manifests: list[tuple[str, int, str]], store: ArtifactStore) -> tuple[str, int]:
    """An OCI index of (digest, size, platform) manifests; (digest, size)."""
    document = {
        "schemaVersion": 2,
        "mediaType": media.OCI_INDEX,
        "manifests": [
            {
                "mediaType": media.OCI_MANIFEST,
                "digest": digest,
                "size": size,
                "platform": dict(zip(("os", "architecture"), platform.split("/", 1), strict=True)),
            }
            for digest, size, platform in manifests
        ],
    }
    return store.add_bytes(canonical(document))
