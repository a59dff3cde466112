"""Relaying HTTP/1.1 messages between two asyncio stream pairs, as they arrive.

Just enough HTTP/1.1 for the local Cloud Run front door (`front_door.py`): a message head read
in one `readuntil` (start line and headers, order and case kept), and bodies copied through
piece by piece as they are framed — Content-Length, chunked (copied with its framing and
trailers), or until the connection closes — so streams (SSE, chunked) are never buffered.
Loopback peers only: not a general HTTP implementation.
"""

from __future__ import annotations

import asyncio
import contextlib

MAX_HEAD = 64 * 1024
_PIECE = 64 * 1024
Headers = list[tuple[str, str]]


def field(headers: Headers, name: str) -> str:
    """The values of header `name` (case-insensitive), comma-joined ('' when absent)."""
    return ",".join(value for key, value in headers if key.lower() == name)


async def read_head(reader: asyncio.StreamReader) -> tuple[str, Headers] | None:
    """(start line, headers) of the next message; None when the peer closed cleanly.
    Raises ValueError for a truncated, oversized or malformed head."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if error.partial.strip():
            raise ValueError("truncated head") from None
        return None
    except asyncio.LimitOverrunError:
        raise ValueError("head too large") from None
    lines = raw[:-4].decode("latin-1").split("\r\n")
    headers: Headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"bad header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def head(start: str, headers: Headers) -> bytes:
    """A message head (start line, headers, empty line) on the wire."""
    lines = [start, *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def status(start: str) -> str:
    """The status code of a response's start line (ValueError when there is none)."""
    parts = start.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"bad status line {start!r}")
    return parts[1]


def error(code: int, reason: str) -> bytes:
    """A whole plain-text response that closes the connection."""
    body = f"{code} {reason}\n".encode()
    return (
        head(
            f"HTTP/1.1 {code} {reason}",
            [
                ("Content-Type", "text/plain"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ],
        )
        + body
    )


async def copy_length(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    while n > 0:
        piece = await reader.read(min(n, _PIECE))
        if not piece:
            raise ConnectionError("peer closed mid-body")
        n -= len(piece)
        writer.write(piece)
        await writer.drain()


async def copy_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy a chunked body as it is framed, chunk by chunk, through the trailers."""
    while True:
        size_line = await reader.readline()
        if not size_line:
            raise ConnectionError("peer closed mid-body")
        writer.write(size_line)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, then the empty line
                line = await reader.readline()
                writer.write(line)
                if line in (b"\r\n", b"\n", b""):
                    await writer.drain()
                    return
        await copy_length(reader, writer, size + 2)  # data and its CRLF


async def copy_to_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while piece := await reader.read(_PIECE):
        writer.write(piece)
        await writer.drain()


async def copy_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: Headers, *, until_eof: bool
) -> bool:
    """Copy one message body framed by `headers`; True when the connection can carry another
    message (a body delimited by the end of the connection cannot)."""
    if "chunked" in field(headers, "transfer-encoding").lower():
        await copy_chunked(reader, writer)
    elif length := field(headers, "content-length"):
        await copy_length(reader, writer, int(length.split(",")[0]))
    elif until_eof:
        await copy_to_eof(reader, writer)
        return False
    return True


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        await copy_to_eof(reader, writer)
    with contextlib.suppress(OSError, RuntimeError):
        writer.write_eof()
