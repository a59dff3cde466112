"""Which Python a base image really has: read from the image, never from its tag.

Two sources, in this order:

1. the config's `PYTHON_VERSION` environment variable (`PYTHON_VERSION=3.12.7`), which the
   official `python` images set;
2. the layers' file lists: the `python3` the image's `PATH` finds first (`/usr/local/bin`
   before `/usr/bin` on the usual PATH), followed through its links to `python3.N`
   (Debian's `usr/bin/python3 -> python3.11`); failing that, the `python3.N` programs in the
   PATH's directories when they agree on one minor.

Layers are applied in order, whiteouts included, so a later layer that removes or replaces an
interpreter counts. The result for a base is kept in a small JSON file under the store, keyed
by the base's digest and platform, so a rebuild does not read the layers again.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CACHE_FILE = "base-python.json"
_VERSION_ENV = re.compile(r"^PYTHON_VERSION=(3)\.(\d+)(?:\D.*)?$")
_INTERPRETER = re.compile(r"^python(3\.\d+)$")
_MAX_HOPS = 16


@dataclass(frozen=True)
class FileEntry:
    """One tar entry of a layer: its path (relative, POSIX) and, for a link, what it points
    at (a symbolic link's target as written; a hard link's as an absolute path)."""

    path: str
    link: str | None = None


@dataclass(frozen=True)
class Detected:
    """A base image's Python minor (`3.11`) and the evidence (`/usr/bin/python3 ->
    python3.11`, or `PYTHON_VERSION=3.12.7`)."""

    minor: str
    evidence: str


def minor_from_config(config: Mapping[str, Any]) -> Detected | None:
    """The minor named by `PYTHON_VERSION` in an image config's `config.Env`, if set."""
    for item in _env(config):
        match = _VERSION_ENV.match(item)
        if match:
            return Detected(f"{match.group(1)}.{match.group(2)}", item)
    return None


def path_of(config: Mapping[str, Any]) -> str:
    """The image's `PATH` (its config's, else the usual default)."""
    for item in _env(config):
        if item.startswith("PATH="):
            return item[len("PATH=") :]
    return DEFAULT_PATH


def minor_from_files(layers: Iterable[Iterable[FileEntry]], path: str) -> Detected | None:
    """The minor of the `python3` that `path` finds in the file system made by `layers`
    (applied in order, with OCI whiteouts); else of the `python3.N` programs in the first
    PATH directory that has any, when they name one minor. None when neither is there."""
    files = apply_layers(layers)
    directories = [_clean(directory) for directory in path.split(":") if directory]
    for directory in directories:
        command = posixpath.join(directory, "python3") if directory else "python3"
        if command in files:
            found = _follow(files, command)
            if found is not None:
                return found
    for directory in directories:
        minors = _minors_in(files, directory)
        if len(minors) == 1:
            (minor,) = minors
            return Detected(minor, f"/{directory}/python{minor}")
    return None


def layer_entries(layer: Path) -> Iterator[FileEntry]:
    """The entries of a (gzip-compressed or plain) tar layer, in order. An unreadable layer
    (another compression, a truncated file) yields nothing more."""
    try:
        with tarfile.open(layer, mode="r|*") as archive:
            for member in archive:
                link = None
                if member.issym():
                    link = member.linkname
                elif member.islnk():  # a hard link names a path from the archive's root
                    link = "/" + _clean(member.linkname)
                yield FileEntry(_clean(member.name), link)
    except (tarfile.TarError, OSError, EOFError):
        return


def image_python(config: Mapping[str, Any], layers: Sequence[Path]) -> Detected | None:
    """The Python minor of the image with `config` and layer files `layers` (base first):
    from `PYTHON_VERSION` when the config sets it, else from the layers' file lists."""
    return minor_from_config(config) or minor_from_files(
        (layer_entries(layer) for layer in layers), path_of(config)
    )


class PythonCache:
    """Detected minors by key (a base's digest and platform), in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, key: str) -> Detected | None:
        entry = self._read().get(key)
        if isinstance(entry, dict) and {"minor", "evidence"} <= entry.keys():
            return Detected(str(entry["minor"]), str(entry["evidence"]))
        return None

    def put(self, key: str, detected: Detected) -> None:
        """Remember `detected` for `key` (written atomically)."""
        data = self._read()
        data[key] = {"minor": detected.minor, "evidence": detected.evidence}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=self.path.parent, prefix=f".{self.path.name}.", delete=False
        ) as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
        os.replace(handle.name, self.path)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def _env(config: Mapping[str, Any]) -> list[str]:
    run = config.get("config")
    env = run.get("Env") if isinstance(run, dict) else None
    return [item for item in env if isinstance(item, str)] if isinstance(env, list) else []


def _clean(name: str) -> str:
    """`./usr/bin/` and `/usr/bin` → `usr/bin`."""
    cleaned = posixpath.normpath("/" + name).lstrip("/")
    return "" if cleaned == "." else cleaned


def apply_layers(layers: Iterable[Iterable[FileEntry]]) -> dict[str, str | None]:
    """path → link target (None for other entries) of the file system the layers make."""
    files: dict[str, str | None] = {}
    for layer in layers:
        for entry in layer:
            directory, name = posixpath.split(entry.path)
            if name == ".wh..wh..opq":
                prefix = directory + "/"
                for path in [p for p in files if p.startswith(prefix)]:
                    del files[path]
            elif name.startswith(".wh."):
                gone = posixpath.join(directory, name[len(".wh.") :])
                for path in [p for p in files if p == gone or p.startswith(gone + "/")]:
                    del files[path]
            else:
                files[entry.path] = entry.link
    return files


def _follow(files: Mapping[str, str | None], command: str) -> Detected | None:
    """Follow `command` through links until a `python3.N` name; its minor and the chain."""
    chain = ["/" + command]
    current = command
    for _ in range(_MAX_HOPS):
        match = _INTERPRETER.match(posixpath.basename(current))
        if match:
            return Detected(match.group(1), " -> ".join(chain))
        link = files.get(current)
        if link is None:
            # A real file called python3: its name says nothing; its siblings may.
            minors = _minors_in(files, posixpath.dirname(current))
            if len(minors) != 1:
                return None
            (minor,) = minors
            return Detected(minor, f"{' -> '.join(chain)} (next to python{minor})")
        chain.append(link)
        current = _clean(
            link if link.startswith("/") else posixpath.join(posixpath.dirname(current), link)
        )
        if current not in files:
            match = _INTERPRETER.match(posixpath.basename(current))
            return Detected(match.group(1), " -> ".join(chain)) if match else None
    return None


def _minors_in(files: Mapping[str, str | None], directory: str) -> set[str]:
    """The minors of the `python3.N` entries directly in `directory`."""
    return {
        match.group(1)
        for name in files
        if posixpath.dirname(name) == directory
        and (match := _INTERPRETER.match(posixpath.basename(name)))
    }
