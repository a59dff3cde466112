"""Registry mirrors, and where the bytes of an image reference really come from.

`MCP_DEPLOY_REGISTRY_MIRRORS` is a comma-separated list of `REGISTRY=MIRROR`, where MIRROR is
`host[:port][/path-prefix]`: with `docker.io=127.0.0.1:5000/hub`, the image
`docker.io/library/python:3.12-slim` is read from `127.0.0.1:5000/hub/library/python:3.12-slim`.
A mirror serves the same manifests and blobs under the same digests, so what is recorded (in
the lock file, in an artifact's inputs) is always the canonical reference; only the transfer
goes to the mirror. Plain HTTP is still used only for a mirror on loopback (`Reference.scheme`).

Docker Hub is named `docker.io` in references (also `index.docker.io`, `registry-1.docker.io`)
but answers the distribution API at `registry-1.docker.io`; its one-part repositories are
`library/<name>`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.errors import input_error
from orchestrator.oci.reference import Reference

ENV = "MCP_DEPLOY_REGISTRY_MIRRORS"
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_API})
_HOST = re.compile(r"^(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:]+\])(?::\d{1,5})?$")
_PATH_PART = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


@dataclass(frozen=True)
class Mirror:
    """Where a registry's images are read from instead: `host[:port]` plus a path prefix
    ("" for none) put in front of every repository."""

    host: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"{self.host}/{self.prefix}" if self.prefix else self.host


def canonical_registry(registry: str) -> str:
    """The registry's one name (lower case; every Docker Hub alias is `docker.io`)."""
    name = registry.lower()
    return DOCKER_HUB if name in _DOCKER_HUB_ALIASES else name


def parse_mirrors(text: str) -> dict[str, Mirror]:
    """`REGISTRY=MIRROR[,...]` → {canonical registry: Mirror}. Empty entries are ignored.

    Raises ValueError naming the entry and the expected form when one is malformed or a
    registry is listed twice.
    """
    mirrors: dict[str, Mirror] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        registry, equals, target = (part.strip() for part in entry.partition("="))
        form = "expected REGISTRY=HOST[:PORT][/PATH-PREFIX], e.g. docker.io=127.0.0.1:5000/hub"
        if not equals or not registry or not target:
            raise ValueError(f"'{entry}': {form}")
        host, _, prefix = target.partition("/")
        prefix = prefix.strip("/")
        if not _HOST.match(registry.lower()) or not _HOST.match(host.lower()):
            raise ValueError(f"'{entry}': {form}")
        if prefix and not all(_PATH_PART.match(part) for part in prefix.split("/")):
            raise ValueError(f"'{entry}': the path prefix '{prefix}' is not a repository path")
        key = canonical_registry(registry)
        if key in mirrors:
            raise ValueError(f"'{entry}': {key} has more than one mirror")
        mirrors[key] = Mirror(host.lower(), prefix)
    return mirrors


def mirrors_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Mirror]:
    """The mirrors of `MCP_DEPLOY_REGISTRY_MIRRORS` (none when unset). Raises `InputError`
    (where: the variable's name) when it is malformed."""
    text = (os.environ if environ is None else environ).get(ENV, "")
    try:
        return parse_mirrors(text)
    except ValueError as error:
        raise input_error(
            ENV, str(error), "a comma-separated list of REGISTRY=HOST[:PORT][/PATH-PREFIX]"
        ) from None


def normalized(reference: Reference) -> Reference:
    """`reference` with its registry's canonical name and, on Docker Hub, `library/` in front
    of a one-part repository (`docker.io/python` is `docker.io/library/python`)."""
    registry = canonical_registry(reference.registry)
    repository = reference.repository
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return Reference(registry, repository, reference.tag, reference.digest)


def source_of(reference: Reference, mirrors: Mapping[str, Mirror]) -> Reference:
    """Where to read `reference` from: its registry's mirror when there is one, else the
    registry's API host (Docker Hub: `registry-1.docker.io`). Tag and digest are kept."""
    canonical = normalized(reference)
    mirror = mirrors.get(canonical.registry)
    if mirror is not None:
        repository = (
            f"{mirror.prefix}/{canonical.repository}" if mirror.prefix else (canonical.repository)
        )
        return Reference(mirror.host, repository, canonical.tag, canonical.digest)
    if canonical.registry == DOCKER_HUB:
        return Reference(DOCKER_HUB_API, canonical.repository, canonical.tag, canonical.digest)
    return canonical
