"""A registry mirror on loopback for the default Cloud Run base: the tests' Debian Python base
copied to `127.0.0.1:5000/<prefix>/library/python:<tag>`, as a mirror of Docker Hub would
serve `docker.io/library/python:<tag>` (same bytes, same digest); the tests' Node.js base, the
same way, as `<prefix>/library/node:<major>-slim`.

Copies go through the project's own registry client (byte-for-byte, so digests are kept).
Each test takes its own prefix, so moving a tag never disturbs another test.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

from orchestrator.build.store import bytes_digest
from orchestrator.oci.reference import Reference
from orchestrator.oci.registry import RegistryClient
from tests.support.debian_base import python_base_image
from tests.support.node_base import node_base_image

REGISTRY = "127.0.0.1:5000"


def new_prefix() -> str:
    """A path prefix no other test uses (`hub-<random>`)."""
    return f"hub-{uuid.uuid4().hex[:10]}"


def mirror_python_base(prefix: str, tag: str = "3.11-slim") -> str:
    """Serve the tests' Python 3.11 base as `<REGISTRY>/<prefix>/library/python:<tag>`;
    returns its digest (the same as the base's)."""
    return mirror_base(prefix, "library/python", tag)


def mirror_node_base(prefix: str, major: str = "22", tag: str | None = None) -> str:
    """Serve the tests' Node.js base of `major` (`tests.support.node_base`: the Debian base plus
    libstdc++ and the official node binary) as `<REGISTRY>/<prefix>/library/node:<tag>`, the tag
    being `<major>-slim` unless given; returns its digest (the same as the base's)."""
    image = node_base_image(REGISTRY, major)
    return mirror_base(prefix, "library/node", tag or f"{major}-slim", image=image)


def mirror_base(prefix: str, repository: str, tag: str, *, image: str | None = None) -> str:
    """Serve the tests' Debian base (Python 3.11 on glibc 2.36 with libgcc_s: a glibc base as
    much as a Python one) as `<REGISTRY>/<prefix>/<repository>:<tag>`; returns its digest.
    `image`, a reference pinned by digest in `<REGISTRY>`, is served instead of that base."""
    source = Reference.parse(image or python_base_image(REGISTRY))
    assert source.digest is not None
    client = RegistryClient(REGISTRY, "http")
    manifest, media_type, digest = client.get_manifest(source.repository, source.digest)
    document = json.loads(manifest)
    target = f"{prefix}/{repository}"
    with tempfile.TemporaryDirectory(prefix="mcp-deploy-mirror-") as scratch:
        for blob in [document["config"], *document["layers"]]:
            if client.has_blob(target, blob["digest"]):
                continue
            path = Path(scratch) / blob["digest"].replace(":", "-")
            client.get_blob(source.repository, blob["digest"], path)
            client.push_blob(target, blob["digest"], path.read_bytes())
    client.put_manifest(target, tag, manifest, media_type)
    return digest


def move_tag(prefix: str, tag: str = "3.11-slim") -> str:
    """Point `<prefix>/library/python:<tag>` at another image (the same Python, one more
    environment variable in its config, so another digest); returns the new digest."""
    client = RegistryClient(REGISTRY, "http")
    repository = f"{prefix}/library/python"
    manifest, media_type, _ = client.get_manifest(repository, tag)
    document = json.loads(manifest)
    with tempfile.TemporaryDirectory(prefix="mcp-deploy-mirror-") as scratch:
        path = Path(scratch) / "config"
        client.get_blob(repository, document["config"]["digest"], path)
        config = json.loads(path.read_bytes())
    config["config"]["Env"] = [*config["config"].get("Env", []), f"MOVED={uuid.uuid4().hex}"]
    data = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = bytes_digest(data)
    client.push_blob(repository, config_digest, data)
    document["config"] = {**document["config"], "digest": config_digest, "size": len(data)}
    new_manifest = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return client.put_manifest(repository, tag, new_manifest, media_type)
