"""A loopback HTTP proxy that adds `Authorization: Bearer <token>` to every request.

The conformance suite's client cannot send an Authorization header, so it talks to this proxy
on 127.0.0.1, which forwards each request to the deployment (same path and query) with the
token added, and streams the answer back as it arrives (SSE replies included). The token is
held in memory only: never on argv, in a file or a log line (the handler logs nothing).

What the proxy changes, besides the token: `Host` is the deployment's (as any client's would
be); an `Origin` naming the proxy itself (what a browser on the proxy's page would send) is
rewritten to the deployment's own origin, so the suite's Origin checks
(dns-rebinding-protection) test the deployment's Origin validation: a foreign Origin passes
through unchanged. Hop-by-hop headers are dropped; `Accept-Encoding` asks for identity. When
the deployment cannot be reached, the proxy answers 502 with a JSON-RPC error naming why.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
    }
)
CONNECT_SECONDS = 10.0
READ_SECONDS = 120.0  # an idle SSE stream is given up after this long
GET_WAIT = 2.0  # seconds a session's request waits for its standalone stream (StreamOrder)
WATCH_SECONDS = 0.25  # how often a streaming relay looks whether its client hung up


def origin_of(url: str) -> str:
    """scheme://host[:port] of `url`, lower-cased (default ports left out)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port is not None and parts.port != default else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def forward_headers(
    headers: list[tuple[str, str]], token: str | None, own_origins: set[str], upstream: str
) -> list[tuple[str, str]]:
    """The request headers sent upstream (see the module docstring)."""
    out: list[tuple[str, str]] = []
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or (token is not None and lower == "authorization"):
            continue
        if lower == "origin" and value.strip().lower() in own_origins:
            value = upstream
        out.append((name, value))
    out.append(("Accept-Encoding", "identity"))
    if token is not None:
        out.append(("Authorization", f"Bearer {token}"))
    return out


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (the suite closes connections at will) is no news."""


class StreamOrder:
    """Keeps one order of the client's: the GET opening a session's standalone SSE stream
    reaches the deployment before the session's next requests.

    The suite's client (the TypeScript SDK) sends that GET as soon as `notifications/
    initialized` is accepted, and its first request right after, on another connection; a
    server that sends its own requests (sampling, elicitation) on the standalone stream loses
    them when the tool call overtakes the GET. Directly connected, the GET wins; through two
    proxy threads it need not. So after a session's `notifications/initialized` is accepted,
    its requests wait (at most `GET_WAIT` seconds) until the GET has been answered.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, float] = {}  # session -> when to stop waiting for its GET
        self._changed = threading.Condition()

    def expect(self, session: str) -> None:
        with self._changed:
            self._waiting[session] = time.monotonic() + GET_WAIT

    def opened(self, session: str) -> None:
        with self._changed:
            self._waiting.pop(session, None)
            self._changed.notify_all()

    def wait_for_stream(self, session: str) -> None:
        with self._changed:
            while session in self._waiting:
                left = self._waiting[session] - time.monotonic()
                if left <= 0:
                    self._waiting.pop(session, None)
                    return
                self._changed.wait(left)


class TokenProxy:
    """`with TokenProxy(url, token) as proxy:` serves on 127.0.0.1 until the block ends;
    `proxy.url` is `url` with its scheme and host replaced by the proxy's."""

    def __init__(self, upstream_url: str, token: str | None) -> None:
        self.upstream_url = upstream_url
        self.upstream_origin = origin_of(upstream_url)
        self._token = token
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self.streams = StreamOrder()

    def __repr__(self) -> str:  # never the token
        return f"TokenProxy({self.upstream_url!r}, token={'set' if self._token else 'none'})"

    @property
    def port(self) -> int:
        assert self._server is not None, "the proxy is not running"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        parts = urlsplit(self.upstream_url)
        query = f"?{parts.query}" if parts.query else ""
        return f"http://127.0.0.1:{self.port}{parts.path or '/'}{query}"

    def __enter__(self) -> TokenProxy:
        import httpx2

        self._client = httpx2.Client(
            timeout=httpx2.Timeout(CONNECT_SECONDS, read=READ_SECONDS),
            follow_redirects=False,
            limits=httpx2.Limits(max_connections=None, max_keepalive_connections=16),
        )
        server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._client is not None:
            self._client.close()

    # used by the handler
    def own_origins(self) -> set[str]:
        return {f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"}

    def upstream_for(self, target: str) -> str:
        """The deployment URL a request line's target (path and query) maps to."""
        return self.upstream_origin + (target if target.startswith("/") else "/" + target)

    def headers_for(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return forward_headers(headers, self._token, self.own_origins(), self.upstream_origin)

    @property
    def client(self) -> Any:
        return self._client


def _watch_client(client: socket.socket, response: Any, done: threading.Event) -> None:
    """While a GET's response streams: when the client hangs up, shut the upstream
    connection (sent with `Connection: close`, so never reused), so the relay stops at once
    instead of holding an idle SSE stream open upstream (on Lambda, an invocation)."""
    while not done.is_set():
        try:
            ready, _, _ = select.select([client], [], [], WATCH_SECONDS)
            if not ready:
                continue
            alive = bool(client.recv(1, socket.MSG_PEEK))
        except (OSError, ValueError):
            alive = False
        if alive:  # the client sent more (it should not, mid-response): look again later
            done.wait(WATCH_SECONDS)
            continue
        stream = response.extensions.get("network_stream")
        upstream = stream.get_extra_info("socket") if stream is not None else None
        if upstream is not None:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_RDWR)
        return


def _handler_for(proxy: TokenProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Nothing is logged (requests carry the token upstream)."""

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                parts: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def _forward(self) -> None:
            body = self._body()
            session = self.headers.get("Mcp-Session-Id") or ""
            initialized = self.command == "POST" and b'"notifications/initialized"' in body
            if session and self.command == "POST" and not initialized:
                proxy.streams.wait_for_stream(session)
            headers = proxy.headers_for(list(self.headers.items()))
            if self.command == "GET":  # its connection is shut when the client leaves: no reuse
                headers.append(("Connection", "close"))
            request = proxy.client.build_request(
                self.command,
                proxy.upstream_for(self.path),
                headers=headers,
                content=body if body or self.command in ("POST", "PUT", "PATCH") else None,
            )
            try:
                response = proxy.client.send(request, stream=True)
            except Exception as error:
                self._refuse(f"{type(error).__name__}: {error}")
                return
            finally:
                if session and self.command == "GET":
                    proxy.streams.opened(session)
            if session and initialized and response.status_code < 300:
                proxy.streams.expect(session)
            try:
                self._relay(response)
            finally:
                response.close()

        def _relay(self, response: Any) -> None:
            self.send_response_only(response.status_code, response.reason_phrase or None)
            for name, value in response.headers.multi_items():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            no_body = self.command == "HEAD" or response.status_code in (204, 304)
            if no_body:
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            done = threading.Event()
            if self.command == "GET":  # an SSE stream the server may hold open for ever
                watcher = threading.Thread(
                    target=_watch_client, args=(self.connection, response, done), daemon=True
                )
                watcher.start()
            try:
                for chunk in response.iter_raw():
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except Exception:  # the client went away, or upstream broke off mid-stream
                self.close_connection = True
            finally:
                done.set()

        def _refuse(self, why: str) -> None:
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {
                        "code": -32000,
                        "message": f"verify's proxy could not reach the deployment: {why}",
                    },
                }
            ).encode()
            self.send_response_only(502)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = do_HEAD = _forward

    return Handler
