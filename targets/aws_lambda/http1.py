"""Just enough HTTP/1.1 on asyncio streams for the local Lambda's loopback servers.

The Runtime API and the Function URL front door sit on the path of every invocation; parsing
with `http.server` (email-based header parsing, a thread per connection, separate writes for
head and body) cost about a millisecond per call. This reads a request head in one
`readuntil`, the body by Content-Length or chunks, and writes each response in one write.
Keep-alive as HTTP/1.1 defines it. Not a general web server: loopback peers only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus

MAX_HEAD = 64 * 1024


class BodyTooLarge(Exception):
    """The request body is over the limit given to `read_request`."""


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    keep_alive: bool = True
    _lookup: dict[str, str] = field(default_factory=dict, repr=False)

    def header(self, name: str, default: str = "") -> str:
        """The first value of header `name` (case-insensitive)."""
        if not self._lookup:
            for key, value in reversed(self.headers):
                self._lookup[key.lower()] = value
        return self._lookup.get(name.lower(), default)


async def read_request(reader: asyncio.StreamReader, max_body: int) -> Request | None:
    """The next request on the connection; None when the peer closed it. Raises
    `BodyTooLarge` (the connection must then be closed) and `ValueError` for bad syntax."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise ValueError("request head too large") from None
    lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    request = Request(method, target, headers)
    connection = request.header("connection").lower()
    request.keep_alive = version == "HTTP/1.1" and connection != "close"
    if request.header("transfer-encoding").lower() == "chunked":
        request.body = await _read_chunked(reader, max_body)
    else:
        length = int(request.header("content-length") or 0)
        if length > max_body:
            raise BodyTooLarge
        request.body = await reader.readexactly(length) if length else b""
    return request


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        total += size
        if total > max_body:
            raise BodyTooLarge
        chunks.append(await reader.readexactly(size))
        await reader.readline()


def response(
    status: int,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    extra: list[tuple[str, str]] | None = None,
    *,
    head_only: bool = False,
) -> bytes:
    """A whole HTTP/1.1 response (Content-Length set here), ready for one write."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    for name, value in extra or ():
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    answer: Callable[[Request], Awaitable[bytes]],
    max_body: int,
    too_large: bytes,
) -> None:
    """Answer the requests of one connection in order until the peer closes it (or asks to);
    a body over `max_body` gets `too_large` and the connection is closed."""
    try:
        while True:
            try:
                request = await read_request(reader, max_body)
            except BodyTooLarge:
                writer.write(too_large)
                await writer.drain()
                break
            if request is None:
                break
            writer.write(await answer(request))
            await writer.drain()
            if not request.keep_alive:
                break
    except (ConnectionError, ValueError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
