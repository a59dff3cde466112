"""The transport of `mcp_deploy_secrets`: one HTTP/1.1 request per connection over a plain
socket (TLS for https), the SDKs' standard-mode retries, and AWS's error answers read.

Goes into the Lambda zip next to `mcp_deploy_secrets` (stdlib only; nothing here imports
http.client or an AWS SDK). `Failure` is one attempt's failure, retryable or not.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import SplitResult

__all__ = ["Failure", "aws_error", "exchange", "host_of", "one_line", "with_retries"]

USER_AGENT = "mcp-deploy-secrets/1"
ATTEMPTS = 3  # the SDKs' standard retry mode
BACKOFF_BASE = 0.1  # seconds; attempt n waits random() * min(BACKOFF_CAP, BASE * 2**(n-1))
BACKOFF_CAP = 2.0
TIMEOUT = 2.0  # per socket operation: three attempts stay well inside Lambda's 10 s init
MAX_ANSWER = 1 << 20  # a SecretString is at most 64 KiB

_T = TypeVar("_T")


class Failure(Exception):
    """One attempt's failure: `retry` when the SDKs would try again."""

    def __init__(self, text: str, *, retry: bool, code: str = "") -> None:
        super().__init__(text)
        self.retry = retry
        self.code = code


def host_of(parts: SplitResult) -> str:
    """The Host header for a URL: lower case, no user info, no default port."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def one_line(text: str, limit: int) -> str:
    text = "".join(" " if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)
    return text[:limit] + "..." if len(text) > limit else text


def with_retries(attempt: Callable[[], _T], environ: Mapping[str, str]) -> _T:
    """`attempt()`, tried again (after full-jitter exponential backoff) while it fails with
    a retryable Failure, up to AWS_MAX_ATTEMPTS (default ATTEMPTS) attempts in all."""
    try:
        attempts = max(1, int(environ.get("AWS_MAX_ATTEMPTS") or ATTEMPTS))
    except ValueError:
        attempts = ATTEMPTS
    for number in range(1, attempts + 1):
        try:
            return attempt()
        except Failure as failure:
            if not failure.retry or number == attempts:
                raise
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (number - 1))
        time.sleep(ceiling * int.from_bytes(os.urandom(2), "big") / 65535)
    raise AssertionError("unreachable")


def aws_error(status: int, headers: Mapping[str, str], data: bytes) -> tuple[str, str]:
    """(code, message) of an AWS error answer, on one line each: JSON 1.1 (`__type`,
    `message`), else the XML of the query protocol (`<Code>`, `<Message>`; some emulations
    answer so), else the X-Amzn-ErrorType header."""
    text = data.decode("utf-8", "replace")
    try:
        fields = json.loads(text)
    except ValueError:
        fields = {
            key.lower(): found.group(1)
            for key in ("Code", "Message")
            if (found := re.search(f"<{key}>([^<]*)</{key}>", text))
        }
    if not isinstance(fields, dict):
        fields = {}
    code = str(fields.get("__type") or fields.get("code") or headers.get("x-amzn-errortype") or "")
    code = code.rsplit("#", 1)[-1].split(":", 1)[0] or f"HTTP {status}"
    message = str(fields.get("message") or fields.get("Message") or "")
    return one_line(code, 100), one_line(message, 300)


_contexts: dict[str, Any] = {}
_contexts_lock = threading.Lock()


def _tls_context(environ: Mapping[str, str]) -> Any:
    import ssl  # already imported by asyncio in the shim

    cafile = environ.get("AWS_CA_BUNDLE") or None
    with _contexts_lock:
        key = cafile or ""
        if key not in _contexts:
            _contexts[key] = ssl.create_default_context(cafile=cafile)
        return _contexts[key]


def exchange(
    parts: SplitResult,
    method: str,
    headers: Mapping[str, str],
    body: bytes,
    environ: Mapping[str, str],
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection: (status, headers by lower-case name, body).
    Failure (retryable) when the connection fails or the answer is not HTTP."""
    host = parts.hostname or ""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in {
        **headers,
        "User-Agent": USER_AGENT,
        "Content-Length": str(len(body)),
        "Connection": "close",
    }.items():
        if "\r" in value or "\n" in value:
            raise Failure(f"header {name} holds a line break", retry=False)
        lines.append(f"{name}: {value}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body
    try:
        tls = _tls_context(environ) if parts.scheme == "https" else None
        port = parts.port or (443 if tls else 80)
        with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
            sock = tls.wrap_socket(raw, server_hostname=host) if tls else raw
            with sock, sock.makefile("rb") as stream:
                sock.sendall(request)
                return _read_answer(stream)
    except Failure:
        raise
    except OSError as error:
        verify = getattr(error, "verify_message", None)  # ssl.SSLCertVerificationError
        text = f"cannot reach {host_of(parts)}: {verify or error or type(error).__name__}"
        raise Failure(text, retry=verify is None) from None


def _read_answer(stream: Any) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of an HTTP/1.1 answer (1xx skipped; Content-Length, chunked,
    or up to the end of the connection). Failure (retryable) when it is not one."""
    try:
        while True:
            status_line = stream.readline(8192).decode("latin-1")
            fields = status_line.split(None, 2)
            if len(fields) < 2 or not fields[0].startswith("HTTP/1.") or not fields[1].isdigit():
                raise Failure(f"not an HTTP answer: {one_line(status_line, 60)!r}", retry=True)
            status = int(fields[1])
            headers: dict[str, str] = {}
            for _ in range(200):
                line = stream.readline(65536).decode("latin-1").rstrip("\r\n")
                if not line:
                    break
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if status >= 200:
                break
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            size, total = -1, 0
            while size != 0 and total <= MAX_ANSWER:
                size = int(stream.readline(1024).split(b";")[0], 16)
                chunk = stream.read(size)
                if len(chunk) < size:
                    raise Failure("the connection closed in the middle of the answer", retry=True)
                chunks.append(chunk)
                total += size
                stream.readline(1024)
            data = b"".join(chunks)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            data = stream.read(min(length, MAX_ANSWER + 1))
            if len(data) < min(length, MAX_ANSWER + 1):
                raise Failure("the connection closed in the middle of the answer", retry=True)
        else:
            data = stream.read(MAX_ANSWER + 1)
    except ValueError:
        raise Failure("not an HTTP answer (bad framing)", retry=True) from None
    if len(data) > MAX_ANSWER:
        raise Failure("the answer is too large", retry=False)
    return status, headers, data
