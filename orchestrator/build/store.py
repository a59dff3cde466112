"""A content-addressed local store of artifacts.

Layout under the store root (by default `<project>/.mcp-deploy/store`):
`blobs/sha256/<hex>` holds each artifact's bytes, named by their digest; `artifacts/<hex>.json`
records what each artifact is. Writes are atomic (write to a temporary name, then rename), so
an interrupted build never leaves a half-written blob under a digest name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from orchestrator.artifacts import Artifact


def file_digest(path: Path) -> str:
    """`sha256:<hex>` of a file's bytes."""
    with path.open("rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


class ArtifactStore:
    """The store is also an OCI image layout (`oci-layout`, `index.json`, `blobs/`), so the
    images in it can be read by any OCI tool (`skopeo copy oci:.mcp-deploy/store:NAME ...`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add_bytes(self, data: bytes) -> tuple[str, int]:
        """Store `data` under its digest (idempotent); returns (digest, size)."""
        digest = bytes_digest(data)
        stored = self.blob_path(digest)
        if not stored.exists():
            stored.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=stored.parent, delete=False) as handle:
                handle.write(data)
            os.replace(handle.name, stored)
        return digest, len(data)

    def tag_image(self, name: str, digest: str, media_type: str, size: int) -> None:
        """Name an image in the layout's index.json (replacing an older image of that name)."""
        (self.root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        index_path = self.root / "index.json"
        index: dict[str, Any] = (
            json.loads(index_path.read_text())
            if index_path.exists()
            else {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
        )
        key = "org.opencontainers.image.ref.name"
        manifests = [
            m for m in index.get("manifests", []) if m.get("annotations", {}).get(key) != name
        ]
        manifests.append(
            {"mediaType": media_type, "digest": digest, "size": size, "annotations": {key: name}}
        )
        index["manifests"] = sorted(manifests, key=lambda m: m["annotations"][key])
        with tempfile.NamedTemporaryFile("w", dir=self.root, delete=False, suffix=".tmp") as handle:
            json.dump(index, handle, indent=2)
        os.replace(handle.name, index_path)

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.root / "blobs" / algorithm / hexdigest

    def add_file(self, path: Path) -> tuple[str, int, Path]:
        """Move `path` into the store; returns (digest, size, stored path). Idempotent."""
        digest = file_digest(path)
        stored = self.blob_path(digest)
        stored.parent.mkdir(parents=True, exist_ok=True)
        size = path.stat().st_size
        if stored.exists():
            path.unlink()
        else:
            shutil.move(path, stored)
        return digest, size, stored

    def add_file_copy(self, path: Path, digest: str) -> None:
        """Copy a file whose digest is known into the store (idempotent)."""
        stored = self.blob_path(digest)
        if not stored.exists():
            stored.parent.mkdir(parents=True, exist_ok=True)
            partial = stored.with_name(stored.name + ".partial")
            shutil.copyfile(path, partial)
            os.replace(partial, stored)

    def keep(self, path: Path, kind: str, target: str, inputs_hash: str) -> Artifact:
        """Move a finished artifact file into the store and record it."""
        digest, size, stored = self.add_file(path)
        artifact = Artifact(kind, target, digest, size, inputs_hash, stored)
        self.record(artifact)
        return artifact

    def record(self, artifact: Artifact) -> None:
        """Remember what the blob `artifact.digest` is."""
        index = self.root / "artifacts"
        index.mkdir(parents=True, exist_ok=True)
        target = index / (artifact.digest.partition(":")[2] + ".json")
        with tempfile.NamedTemporaryFile("w", dir=index, delete=False, suffix=".tmp") as handle:
            json.dump(artifact.to_dict(), handle, indent=2, sort_keys=True)
        os.replace(handle.name, target)

    def find(self, kind: str, inputs_hash: str) -> Artifact | None:
        """A stored artifact of `kind` built from exactly these inputs, if any."""
        index = self.root / "artifacts"
        if not index.is_dir():
            return None
        for record in sorted(index.glob("*.json")):
            data = json.loads(record.read_text())
            if data.get("kind") == kind and data.get("inputs_hash") == inputs_hash:
                artifact = Artifact.from_dict(data)
                if artifact.path.is_file():
                    return artifact
        return None


def bytes_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
