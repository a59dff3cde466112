"""What a base image offers a dynamically linked binary server: the shared libraries in its
library directories and the version of its glibc, read from its layers (never from its tag).

The default base of a dynamic binary is distroless's `cc` image (glibc, libgcc, libstdc++,
OpenSSL, CA certificates, tzdata; user `nonroot` 65532), pinned by digest in the lock file on
the first build like the Python default. A static binary needs no base (`scratch`).
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

from orchestrator.build.elf import Provided, glibc_provided
from targets.cloudrun.base_python import apply_layers, layer_entries

DEFAULT_GLIBC_BASE = "gcr.io/distroless/cc-debian12:nonroot"
CACHE_FILE = "base-glibc.json"
LIBRARY_DIRECTORIES = (
    "lib",
    "lib64",
    "usr/lib",
    "usr/lib64",
    "usr/local/lib",
    "lib/x86_64-linux-gnu",
    "usr/lib/x86_64-linux-gnu",
    "lib/aarch64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
)
_MAX_HOPS = 16


def image_offers(name: str, layers: Sequence[Path]) -> Provided:
    """The libraries (file names in the usual library directories, links included) and the
    glibc version (from its libc.so.6, followed through links; None without one) of the
    image whose layer files are `layers`, base first."""
    files = apply_layers(layer_entries(layer) for layer in layers)
    libraries = frozenset(
        posixpath.basename(path) for path in files if posixpath.dirname(path) in LIBRARY_DIRECTORIES
    )
    glibc = None
    for directory in LIBRARY_DIRECTORIES:
        real = _resolve(files, posixpath.join(directory, "libc.so.6"))
        if real is not None:
            glibc = _glibc_of(layers, real)
            if glibc is not None:
                break
    return Provided(name, libraries, glibc)


def _resolve(files: dict[str, str | None], path: str) -> str | None:
    """`path` followed through symbolic links to a regular file of the image (None: none)."""
    for _ in range(_MAX_HOPS):
        if path not in files:
            return None
        link = files[path]
        if link is None:
            return path
        target = link if link.startswith("/") else posixpath.join(posixpath.dirname(path), link)
        path = posixpath.normpath("/" + target).lstrip("/")
    return None


def _glibc_of(layers: Sequence[Path], path: str) -> tuple[int, int] | None:
    """The glibc version libc.so.6 at `path` defines, read from the last layer holding it."""
    for layer in reversed(layers):
        try:
            with tarfile.open(layer, mode="r|*") as archive:
                for member in archive:
                    if posixpath.normpath("/" + member.name).lstrip("/") != path:
                        continue
                    if not member.isfile():
                        return None
                    stream = archive.extractfile(member)
                    if stream is None:
                        return None
                    return glibc_provided(BytesIO(stream.read()))
        except (tarfile.TarError, OSError, EOFError):
            continue
    return None


class OffersCache:
    """`image_offers` results by key (a base's digest and platform), in one JSON file under
    the store, so a rebuild does not read the layers again."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, key: str) -> Provided | None:
        try:
            known = json.loads(self.path.read_text())[key]
            glibc = known["glibc"]
            return Provided(
                str(known["name"]),
                frozenset(str(name) for name in known["libraries"]),
                (int(glibc[0]), int(glibc[1])) if glibc else None,
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None

    def put(self, key: str, offers: Provided) -> None:
        try:
            known = json.loads(self.path.read_text())
        except (OSError, ValueError):
            known = {}
        known[key] = {
            "name": offers.name,
            "libraries": sorted(offers.libraries),
            "glibc": list(offers.glibc) if offers.glibc else None,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(known, sort_keys=True))
        partial.replace(self.path)
