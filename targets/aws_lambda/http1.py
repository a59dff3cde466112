"""Just enough HTTP/1.1 on asyncio streams for the local Lambda's loopback servers.

The Runtime API and the Function URL front door sit on the path of every invocation; parsing
with `http.server` (email-based header parsing, a thread per connection, separate writes for
head and body) cost about a millisecond per call. This reads a request head in one
`readuntil`, the body by Content-Length or chunks, and writes each response in one write.
Keep-alive as HTTP/1.1 defines it. Not a general web server: loopback peers only.

Bounds, for servers that face untrusted peers: a request head must be complete within
`head_timeout` seconds of its first byte (else 408 and the connection is closed; the front
door uses `HEAD_TIMEOUT`), and a connection may wait at most `idle_timeout` seconds for a
request's first byte (then a plain close). A connection answered before its request was
read (a body over the limit, a refused peer) is closed cleanly: the answer goes out, the
write side is shut (FIN), and what the client is still sending is read and dropped, up to
`LINGER_BYTES` or `LINGER_TIMEOUT`, so the client reads the answer instead of a reset
(closing a socket with unread data sends RST).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus

MAX_HEAD = 64 * 1024
HEAD_TIMEOUT = 10.0  # seconds from a request's first byte to the end of its head (front door)
LINGER_BYTES = 64 * 1024 * 1024  # read and dropped after an early answer, at most
LINGER_TIMEOUT = 10.0  # seconds spent on that, at most
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class BodyTooLarge(Exception):
    """The request body is over the limit given to `read_body`."""


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


async def read_request(reader: asyncio.StreamReader, first: bytes, max_body: int) -> Request:
    """The head of the request whose first byte, `first`, was already read (its body is
    `read_body`'s). Raises `asyncio.IncompleteReadError` when the peer closes the connection
    mid-head and `ValueError` for bad syntax or a head over the reader's limit."""
    try:
        head = first + await reader.readuntil(b"\r\n\r\n")
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
    return request


async def read_body(reader: asyncio.StreamReader, request: Request, max_body: int) -> None:
    """Read `request`'s body (Content-Length or chunked) into `request.body`. Raises
    `BodyTooLarge` past `max_body` bytes."""
    if request.header("transfer-encoding").lower() == "chunked":
        request.body = await _read_chunked(reader, max_body)
    else:
        length = int(request.header("content-length") or 0)
        if length > max_body:
            raise BodyTooLarge
        request.body = await reader.readexactly(length) if length else b""


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


async def answer_and_close(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> None:
    """Send `data` (a response that says `Connection: close`), shut the write side, drop what
    the client still sends (bounded by `LINGER_BYTES` and `LINGER_TIMEOUT`), then close."""
    try:
        writer.write(data)
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        dropped = 0
        async with asyncio.timeout(LINGER_TIMEOUT):
            while dropped < LINGER_BYTES:
                chunk = await reader.read(256 * 1024)
                if not chunk:
                    break
                dropped += len(chunk)
    except (ConnectionError, TimeoutError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


class _Watchdog:
    """The deadline of a connection's current phase, checked by one loop timer that ticks
    every `tick` seconds: setting a phase costs an attribute write, not a timer (a timer per
    request costs microseconds, and one that is cancelled stays in the loop's heap). When a
    deadline passes, `answer` (may be empty) is sent and the connection closed, which ends
    the pending read."""

    def __init__(self, writer: asyncio.StreamWriter, tick: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.deadline = math.inf
        self.answer = b""
        self._writer = writer
        self._tick = tick
        self._handle = self.loop.call_later(tick, self._check)

    def phase(self, seconds: float | None, answer: bytes = b"") -> None:
        """From now, at most `seconds` (None: no limit) until the next `phase`."""
        self.deadline = math.inf if seconds is None else self.loop.time() + seconds
        self.answer = answer

    def _check(self) -> None:
        if self.loop.time() < self.deadline:
            self._handle = self.loop.call_later(self._tick, self._check)
            return
        if self.answer:
            self._writer.write(self.answer)
        self._writer.close()

    def stop(self) -> None:
        self._handle.cancel()


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    answer: Callable[[Request], Awaitable[bytes]],
    max_body: int,
    too_large: bytes,
    *,
    head_timeout: float | None = None,
    idle_timeout: float | None = None,
) -> None:
    """Answer the requests of one connection in order until the peer closes it (or asks to).

    A body over `max_body` gets `too_large` (which must say `Connection: close`) through
    `answer_and_close`. With `head_timeout`, a head not complete that many seconds after its
    first byte gets 408 and the connection is closed; with `idle_timeout`, a connection that
    waits that long for a request's first byte is closed. Both are enforced to within a
    second (`_Watchdog`); without them (a peer that is trusted) nothing is timed."""
    watchdog = None
    if head_timeout is not None or idle_timeout is not None:
        limits = [t for t in (head_timeout, idle_timeout) if t is not None]
        watchdog = _Watchdog(writer, min(1.0, min(limits) / 4))
    try:
        while True:
            if watchdog is not None:
                watchdog.phase(idle_timeout)
            first = await reader.readexactly(1)
            if watchdog is not None:
                watchdog.phase(head_timeout, REQUEST_TIMEOUT)
            request = await read_request(reader, first, max_body)
            if watchdog is not None:
                watchdog.phase(None)
            try:
                await read_body(reader, request, max_body)
            except BodyTooLarge:
                await answer_and_close(reader, writer, too_large)
                return
            writer.write(await answer(request))
            await writer.drain()
            if not request.keep_alive:
                break
    except (ConnectionError, ValueError, asyncio.IncompleteReadError):
        pass
    finally:
        if watchdog is not None:
            watchdog.stop()
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()
