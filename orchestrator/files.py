"""The one bounded reader of files the user names (the spec, the ignore file, `file:` secret
sources) and the words for why a path cannot be used. A toolkit module: it imports nothing of
the project, so the spec, the build and the secret readers can all use it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class UnreadableFile(Exception):
    """A file the user named cannot be read; `reason` says why in words ("does not exist",
    "is a FIFO, not a regular file", "is larger than 1 MiB")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def size_text(size: int) -> str:
    """`1048576` → `1 MiB`, `65536` → `64 KiB` (for limits in messages)."""
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def os_reason(error: OSError | ValueError) -> str:
    """Why an OS call on a path failed, in words (ValueError: a NUL byte in the path)."""
    if isinstance(error, ValueError):
        return "its path contains a NUL byte"
    reasons = {
        errno.ENOENT: "does not exist",
        errno.ENAMETOOLONG: "its path is too long for the file system",
        errno.ENOTDIR: "a part of its path is not a directory",
        errno.ELOOP: "its path has too many levels of symbolic links",
        errno.EACCES: "permission denied",
        errno.EISDIR: "is a directory",
    }
    return reasons.get(error.errno or 0, (error.strerror or str(error)).lower())


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is a device, not a regular file"


def read_regular_file(path: Path, limit: int) -> bytes:
    """The content of `path`, which must be a regular file of at most `limit` bytes.

    Never blocks and never reads without bound: a FIFO, device, socket or directory is
    refused after a `stat` (and the file is opened non-blocking, so one swapped in meanwhile
    cannot block either); at most `limit` + 1 bytes are read. Raises `UnreadableFile`."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISREG(mode):
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError) as error:
        raise UnreadableFile(os_reason(error)) from None
    if not stat.S_ISREG(mode):
        raise UnreadableFile(_kind(mode))
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise UnreadableFile(_kind(status.st_mode))
        if status.st_size > limit:
            raise UnreadableFile(f"is larger than {size_text(limit)}")
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as error:
        raise UnreadableFile(os_reason(error)) from None
    finally:
        os.close(descriptor)
    if remaining <= 0:
        raise UnreadableFile(f"is larger than {size_text(limit)}")
    return b"".join(chunks)
