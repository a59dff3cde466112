"""A loopback relay in front of a Secrets Manager implementation that throttles (or drops
connections) before passing requests on: for the SDK-free client's tests and the Lambda shim's."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Relay:
    """Loopback HTTP relay to `upstream`: for each SecretId, the first answers follow `faults`
    ("throttle": 400 ThrottlingException, "429", "503", "drop": the connection closed
    unanswered), then requests pass through after `delay` seconds. Records what it did."""

    upstream: str
    faults: list[str] = field(default_factory=list)
    delay: float = 0.0
    seen: list[tuple[str, str]] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, secret_id: str) -> str:
        with self.lock:
            count = sum(1 for seen, _ in self.seen if seen == secret_id)
            action = self.faults[count] if count < len(self.faults) else "pass"
            self.seen.append((secret_id, action))
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        return action

    def forward(self, path: str, headers: Any, body: bytes) -> tuple[int, bytes]:
        time.sleep(self.delay)
        target = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        try:
            connection.request("POST", path, body, dict(headers.items()))
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()

    def __enter__(self) -> str:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                action = relay.decide(json.loads(body)["SecretId"])
                try:
                    if action == "drop":
                        self.close_connection = True
                        return
                    if action == "pass":
                        status, data = relay.forward(self.path, self.headers, body)
                    elif action == "throttle":
                        status = 400
                        data = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
                    else:
                        status, data = int(action), b""
                finally:
                    with relay.lock:
                        relay.in_flight -= 1
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
