"""verify's token-adding proxy, against a loopback upstream: the token added (and a client's
own replaced), Origin handling, streaming as it comes, idle streams closed when the client
leaves, ordering of a session's stream and requests, and 502 when nothing listens."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from orchestrator.verify.proxy import StreamOrder, TokenProxy, forward_headers, origin_of
from tests.support.net import free_port

TOKEN = "proxy-token-canary-91c2"


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[dict[str, Any]]] = []
    stream_closed: ClassVar[threading.Event] = threading.Event()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Upstream.seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )

    def do_POST(self) -> None:
        self._record()
        payload = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._record()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.path.startswith("/idle"):
            self.wfile.write(b"data: first\n\n")
            self.wfile.flush()
            try:  # an idle stream: nothing more until the other side closes
                while self.rfile.read(1):
                    pass
            finally:
                Upstream.stream_closed.set()
            return
        for number in range(3):
            self.wfile.write(f"data: {number}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.3)


@pytest.fixture
def upstream() -> Iterator[str]:
    Upstream.seen = []
    Upstream.stream_closed = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mcp?x=1"
    finally:
        server.shutdown()
        server.server_close()


def request(
    proxy: TokenProxy, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    connection.request(method, path, body=body or None, headers=headers)
    answer = connection.getresponse()
    data = answer.read()
    connection.close()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}, data


def test_the_token_is_added_and_a_clients_own_replaced(upstream: str) -> None:
    with TokenProxy(upstream, TOKEN) as proxy:
        assert proxy.url == f"http://127.0.0.1:{proxy.port}/mcp?x=1"
        status, _headers, body = request(
            proxy, "POST", "/mcp?x=1", {"Authorization": "Bearer other", "X-Kept": "yes"}, b"{}"
        )
        assert TOKEN not in repr(proxy)
    assert status == 200 and json.loads(body)["result"] == {}
    [seen] = Upstream.seen
    assert seen["path"] == "/mcp?x=1" and seen["body"] == b"{}"
    assert seen["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert seen["headers"]["X-Kept"] == "yes"
    assert seen["headers"]["Host"] == upstream.split("/")[2]
    assert seen["headers"]["Accept-Encoding"] == "identity"


def test_without_a_token_nothing_is_added(upstream: str) -> None:
    with TokenProxy(upstream, None) as proxy:
        request(proxy, "POST", "/mcp", {"Authorization": "Bearer theirs"}, b"{}")
    assert Upstream.seen[0]["headers"]["Authorization"] == "Bearer theirs"


def test_origin_of_the_proxy_becomes_the_deployments(upstream: str) -> None:
    with TokenProxy(upstream, TOKEN) as proxy:
        own = f"http://127.0.0.1:{proxy.port}"
        request(proxy, "POST", "/mcp", {"Origin": own}, b"{}")
        request(proxy, "POST", "/mcp", {"Origin": "http://evil.example.com"}, b"{}")
    assert Upstream.seen[0]["headers"]["Origin"] == origin_of(upstream)
    assert Upstream.seen[1]["headers"]["Origin"] == "http://evil.example.com"


def test_a_stream_is_relayed_as_it_comes(upstream: str) -> None:
    with TokenProxy(upstream, TOKEN) as proxy:
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        connection.request("GET", "/sse", headers={"Accept": "text/event-stream"})
        answer = connection.getresponse()
        started = time.monotonic()
        first = answer.read1(64)
        early = time.monotonic() - started
        rest = answer.read()
        connection.close()
    assert first.startswith(b"data: 0") and early < 0.25
    assert (first + rest).count(b"data: ") == 3


def test_an_idle_stream_is_closed_upstream_when_the_client_leaves(upstream: str) -> None:
    with TokenProxy(upstream, TOKEN) as proxy:
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        connection.request("GET", "/idle", headers={"Accept": "text/event-stream"})
        answer = connection.getresponse()
        assert answer.read1(64).startswith(b"data: first")
        connection.close()
        assert Upstream.stream_closed.wait(5)
    assert Upstream.seen[0]["headers"]["Connection"] == "close"


def test_nothing_listening_is_a_502_naming_why() -> None:
    with TokenProxy(f"http://127.0.0.1:{free_port()}/mcp", TOKEN) as proxy:
        status, headers, body = request(proxy, "POST", "/mcp", {}, b"{}")
    assert status == 502 and headers["content-type"] == "application/json"
    message = json.loads(body)["error"]["message"]
    assert "could not reach the deployment" in message and TOKEN not in message


def test_forward_headers_drop_hop_by_hop() -> None:
    out = dict(
        forward_headers(
            [("Connection", "keep-alive"), ("Host", "x"), ("Content-Length", "2"), ("A", "b")],
            None,
            set(),
            "https://up.example",
        )
    )
    assert out == {"A": "b", "Accept-Encoding": "identity"}


def test_origin_of() -> None:
    assert origin_of("https://H.example:443/mcp") == "https://h.example"
    assert origin_of("http://127.0.0.1:8080/mcp?q") == "http://127.0.0.1:8080"
    assert origin_of("http://[::1]:9/") == "http://[::1]:9"


def test_stream_order_waits_for_the_get_then_lets_go() -> None:
    order = StreamOrder()
    order.wait_for_stream("s")  # nothing expected: no wait
    order.expect("s")
    released: list[float] = []
    started = time.monotonic()

    def wait() -> None:
        order.wait_for_stream("s")
        released.append(time.monotonic())

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    assert released == []
    order.opened("s")
    waiter.join(2)
    assert released and released[0] - started < 1.0


def test_stream_order_gives_up_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("orchestrator.verify.proxy.GET_WAIT", 0.2)
    order = StreamOrder()
    order.expect("s")
    started = time.monotonic()
    order.wait_for_stream("s")
    assert 0.15 < time.monotonic() - started < 1.0
