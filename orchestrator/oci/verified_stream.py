"""The body of a blob streamed from one registry to another, checked as it goes: the bytes
must come to the blob's size and hash to its digest before the last of them is sent on."""

from __future__ import annotations

import hashlib
import http.client

CHUNK = 1 << 20  # bytes read from the source (and sent on) at a time


class Damaged(Exception):
    """The source's bytes do not match the blob's digest or size."""


class SourceBroke(Exception):
    """Reading the source broke off (connection lost, short read): worth another attempt.
    Not an OSError, so the PUT streaming it does not mistake it for its own failure."""


class VerifiedBody:
    """The body of a streamed PUT: reads the source answer `CHUNK` bytes at a time (whatever
    size is asked for), hashing it. The last chunk is handed on only once the whole blob has
    been read and its size and sha256 check out; otherwise `Damaged` is raised, which
    aborts the PUT before the destination has the whole blob."""

    def __init__(self, answer: http.client.HTTPResponse, digest: str, size: int) -> None:
        self._answer = answer
        self._digest = digest
        self._size = size
        self._count = 0
        self._hash = hashlib.sha256()
        self._finished = False

    def read(self, _size: int = -1, /) -> bytes:
        if self._finished:
            return b""
        chunk = self._take(min(CHUNK, self._size - self._count + 1))
        self._count += len(chunk)
        self._hash.update(chunk)
        if self._count > self._size:
            raise Damaged(f"it is longer than the {self._size} bytes its descriptor says")
        if self._count < self._size:
            if not chunk and self._answer.length:  # fewer bytes than its Content-Length
                raise SourceBroke(f"the answer broke off after {self._count} bytes")
            if not chunk:
                raise Damaged(f"it ended after {self._count} of {self._size} bytes")
            return chunk
        if self._take(1):
            raise Damaged(f"it is longer than the {self._size} bytes its descriptor says")
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self._digest:
            raise Damaged(f"its bytes hash to {actual}")
        self._finished = True
        return chunk

    def _take(self, size: int) -> bytes:
        try:
            return self._answer.read(size)
        except (OSError, http.client.HTTPException) as error:
            raise SourceBroke(f"{type(error).__name__}: {error}") from None
