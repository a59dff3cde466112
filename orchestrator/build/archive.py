"""Deterministic archives: same inputs, same bytes.

Entries are sorted by path, every timestamp is the build epoch (SOURCE_DATE_EPOCH when set,
else a fixed date), permissions are normalised (0644, or 0755 for executables), owners are
root, and no directory entries or extra fields are written.
"""

from __future__ import annotations

import os
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# 1980-01-01T00:00:00Z: the earliest time a zip can record.
ZIP_EPOCH_MIN = 315532800


@dataclass(frozen=True)
class Entry:
    """One file in an archive: its path inside, and either a file on disk or bytes."""

    path: str
    source: Path | None = None
    data: bytes | None = None
    executable: bool = False

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.source is not None, f"{self.path}: an Entry needs a source or data"
        return self.source.read_bytes()

    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.source is not None
        return self.source.stat().st_size


def build_epoch() -> int:
    """SOURCE_DATE_EPOCH (https://reproducible-builds.org) if set, else 1980-01-01."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(raw) if raw.isdigit() else ZIP_EPOCH_MIN


def write_zip(entries: Iterable[Entry], destination: Path, epoch: int | None = None) -> None:
    """Write `entries` as a deflated zip, sorted and with normalised metadata."""
    stamp = time.gmtime(max(epoch if epoch is not None else build_epoch(), ZIP_EPOCH_MIN))
    ordered = sorted(entries, key=lambda entry: entry.path)
    seen: set[str] = set()
    with zipfile.ZipFile(destination, "w") as archive:
        for entry in ordered:
            if entry.path in seen:
                raise ValueError(f"duplicate archive entry: {entry.path}")
            seen.add(entry.path)
            info = zipfile.ZipInfo(entry.path, date_time=stamp[:6])
            info.create_system = 3  # unix, so the permission bits below are honoured
            mode = 0o755 if entry.executable else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entry.read(), compresslevel=6)


@dataclass(frozen=True)
class Layer:
    """A gzipped tar layer: `digest` of the compressed bytes, `diff_id` of the tar itself."""

    path: Path
    digest: str
    diff_id: str
    size: int


def write_tar_layer(entries: Iterable[Entry], destination: Path, epoch: int | None = None) -> Layer:
    """Write `entries` as a reproducible gzipped tar (an OCI layer).

    Parent directories are added (0755), every entry is owned by root with mtime `epoch`,
    entries are sorted, and the gzip header carries no name and no time.
    """
    import gzip
    import hashlib
    import io
    import tarfile

    mtime = epoch if epoch is not None else build_epoch()
    files = sorted(entries, key=lambda entry: entry.path)
    directories = sorted({parent for e in files for parent in _parents(e.path)})
    tar_hash = hashlib.sha256()

    class _Hashing(io.RawIOBase):
        def __init__(self, sink: gzip.GzipFile) -> None:
            self.sink = sink

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            tar_hash.update(data)
            return self.sink.write(data)

    with (
        destination.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as compressed,
        tarfile.open(fileobj=_Hashing(compressed), mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(info)
        for entry in files:
            data = entry.read()
            info = tarfile.TarInfo(entry.path)
            info.size, info.mtime = len(data), mtime
            info.mode = 0o755 if entry.executable else 0o644
            tar.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(destination.read_bytes()).hexdigest()
    return Layer(
        destination,
        f"sha256:{digest}",
        f"sha256:{tar_hash.hexdigest()}",
        destination.stat().st_size,
    )


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def human_size(count: int) -> str:
    """`1.5 MiB`, or KiB below half a MiB."""
    return f"{count / 2**20:.1f} MiB" if count >= 2**19 else f"{count / 2**10:.1f} KiB"


@dataclass(frozen=True)
class SizeLimits:
    """A platform's package size limits, and how to say they were exceeded."""

    what: str  # "the Lambda package"
    allowed_by: str  # "Lambda allows"
    max_uncompressed: int
    max_compressed: int
    hint: str
    compressed_note: str = ""  # said after the compressed limit, e.g. which plan it is


def write_zip_within(entries: Iterable[Entry], destination: Path, limits: SizeLimits) -> int:
    """`write_zip`, refusing (with `OperationError`) what exceeds `limits`: the uncompressed
    size is checked before anything is written. Returns the compressed size."""
    from orchestrator.errors import OperationError

    listed = list(entries)
    uncompressed = sum(entry.size() for entry in listed)
    if uncompressed > limits.max_uncompressed:
        raise OperationError(
            f"{limits.what} would be {human_size(uncompressed)} uncompressed; "
            f"{limits.allowed_by} {human_size(limits.max_uncompressed)}",
            hint=limits.hint,
        )
    write_zip(listed, destination)
    compressed = destination.stat().st_size
    if compressed > limits.max_compressed:
        raise OperationError(
            f"{limits.what} is {human_size(compressed)} compressed; {limits.allowed_by} "
            f"{human_size(limits.max_compressed)}{limits.compressed_note}",
            hint=limits.hint,
        )
    return compressed
