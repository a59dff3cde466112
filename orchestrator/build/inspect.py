"""What a built artifact contains, read without running it.

`sdk_versions` names the MCP SDK distributions inside an artifact — the official SDK (`mcp`)
and the standalone `fastmcp` (whose code may come as `fastmcp-slim`) — from the names of their
`*.dist-info` directories (`mcp-1.26.0.dist-info` → mcp 1.26.0):

- a zip (Lambda): the directories at the zip's root (the task root);
- an OCI image (Cloud Run): a manifest or image index blob in the store
  (`<store>/blobs/sha256/<hex>`), whose layers (gzipped tars, in the same store) are read from
  the top down until a layer holds `app/deps/*.dist-info` (so the base image is rarely read).
"""

from __future__ import annotations

import json
import re
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SDK_DISTRIBUTIONS = ("mcp", "fastmcp")
_ALIASES = {"fastmcp_slim": "fastmcp"}  # fastmcp ≥ 3.4 ships its code as fastmcp-slim
_DIST_INFO = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+?)-(?P<version>[^-/]+)\.dist-info$")
_IMAGE_DEPS = "app/deps/"


def sdk_versions(artifact_path: Path, store_root: Path | None = None) -> dict[str, str]:
    """{distribution: version} of the MCP SDKs in the artifact at `artifact_path` ({} when
    there is none). For an image, `store_root` is the store its blobs are in (default: the
    store the path itself lies in). Raises OSError/ValueError for an unreadable artifact."""
    if zipfile.is_zipfile(artifact_path):
        with zipfile.ZipFile(artifact_path) as archive:
            return _sdks(name.split("/", 1)[0] for name in archive.namelist())
    store = store_root if store_root is not None else artifact_path.parents[2]
    document = json.loads(artifact_path.read_bytes())
    return _image_sdks(store, document)


def _blob(store: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return store / "blobs" / algorithm / hexdigest


def _image_sdks(store: Path, document: dict[str, Any]) -> dict[str, str]:
    if "manifests" in document:  # an index: every platform holds the same distributions
        for entry in document["manifests"]:
            found = _image_sdks(store, json.loads(_blob(store, entry["digest"]).read_bytes()))
            if found:
                return found
        return {}
    for layer in reversed(document.get("layers", [])):
        names = _deps_in_layer(_blob(store, layer["digest"]))
        if names is not None:
            return _sdks(names)
    return {}


def _deps_in_layer(path: Path) -> list[str] | None:
    """The entry names directly under app/deps/ in a layer; None when it has none."""
    names: set[str] = set()
    try:
        with tarfile.open(path, mode="r|*") as layer:
            for member in layer:
                name = member.name.lstrip("./").lstrip("/")
                if name.startswith(_IMAGE_DEPS):
                    names.add(name[len(_IMAGE_DEPS) :].split("/", 1)[0])
    except (tarfile.TarError, OSError, EOFError):
        return None  # a layer this reader cannot open (e.g. zstd) holds no answer here
    names.discard("")
    return sorted(names) or None


def _sdks(entries: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in entries:
        match = _DIST_INFO.match(entry)
        if match is None:
            continue
        name = re.sub(r"[-_.]+", "_", match["name"]).lower()
        name = _ALIASES.get(name, name)
        if name in SDK_DISTRIBUTIONS:
            found.setdefault(name, match["version"])
    return dict(sorted(found.items()))
