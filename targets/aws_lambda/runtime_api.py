"""The Lambda Runtime API (version 2018-06-01) on loopback, for one execution environment.

AWS's runtime client (`awslambdaric`) long-polls `GET /runtime/invocation/next`, runs the
handler, and posts the outcome to `.../invocation/<id>/response` or `.../<id>/error`; a failure
while importing the handler goes to `/runtime/init/error`. `invoke()` queues an event and waits
for its outcome, with the request id, deadline, function ARN and trace id headers Lambda sends.
Only 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import json
import queue
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

PREFIX = "/2018-06-01/runtime"
_OUTCOME = re.compile(rf"^{PREFIX}/invocation/([^/]+)/(response|error)$")

OutcomeKind = Literal["response", "error", "init_error", "timeout", "exited"]


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server whose clients may vanish (a runtime killed mid-request, a
    caller that gave up): dropped connections are not errors worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass
class Outcome:
    """What became of one invocation (or of the init phase, for `init_error`).

    `timeout`: no outcome before the deadline; `exited`: the runtime process ended first.
    """

    kind: OutcomeKind
    body: bytes = b""
    error_type: str | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class _Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None


class RuntimeAPI:
    """A Runtime API server for one function; use as a context manager or start()/stop()."""

    def __init__(
        self,
        function_name: str,
        *,
        region: str = "us-east-1",
        account: str = "000000000000",
        timeout: float = 30.0,
    ) -> None:
        self.function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.timeout = timeout
        self.init_error: Outcome | None = None
        self.polled = threading.Event()  # set when the runtime first asks for work (init done)
        self._queue: queue.Queue[_Invocation | None] = queue.Queue()
        self._inflight: dict[str, _Invocation] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """`127.0.0.1:PORT`, the value of AWS_LAMBDA_RUNTIME_API."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> RuntimeAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RuntimeAPI:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def invoke(
        self, event: Any, timeout: float | None = None, request_id: str | None = None
    ) -> Outcome:
        """Queue `event` and wait for its outcome; `timeout` outcome after the deadline."""
        limit = self.timeout if timeout is None else timeout
        invocation = _Invocation(
            request_id=request_id or str(uuid.uuid4()),
            payload=json.dumps(event).encode(),
            deadline_ms=int((time.time() + limit) * 1000),
        )
        with self._lock:
            self._inflight[invocation.request_id] = invocation
            self._queue.put(invocation)
        finished = invocation.done.wait(limit)
        with self._lock:
            self._inflight.pop(invocation.request_id, None)
        if self.init_error is not None and invocation.outcome is None:
            return self.init_error
        if not finished or invocation.outcome is None:
            return Outcome("timeout")
        return invocation.outcome

    def reset(self, outcome: Outcome | None = None) -> None:
        """Forget the current execution environment (its process is gone): every waiting
        invocation gets `outcome`, a runtime still long-polling is released, and the next
        runtime process starts from a clean slate (cold start)."""
        with self._lock:
            waiting = list(self._inflight.values())
            stale, self._queue = self._queue, queue.Queue()
            self.init_error = None
            self.polled = threading.Event()
        stale.put(None)
        for invocation in waiting:
            invocation.outcome = invocation.outcome or outcome or Outcome("exited")
            invocation.done.set()

    def _finish(self, request_id: str, outcome: Outcome) -> bool:
        with self._lock:
            invocation = self._inflight.get(request_id)
        if invocation is None:
            return False
        invocation.outcome = outcome
        invocation.done.set()
        return True

    def _fail_init(self, outcome: Outcome) -> None:
        with self._lock:
            self.init_error = outcome
            waiting = list(self._inflight.values())
        for invocation in waiting:
            invocation.outcome = invocation.outcome or outcome
            invocation.done.set()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _reply(
                self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404)
                    return
                api.polled.set()
                work = api._queue
                invocation = work.get()
                if invocation is None:  # released by reset(): this runtime is gone
                    work.put(None)
                    self._reply(410)
                    return
                self._reply(
                    200,
                    invocation.payload,
                    {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                        "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-"
                        f"{uuid.uuid4().hex[:24]};Sampled=0",
                    },
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
                if self.path == f"{PREFIX}/init/error":
                    api._fail_init(Outcome("init_error", body, error_type))
                    self._reply(202)
                    return
                match = _OUTCOME.match(self.path)
                if match is None:
                    self._reply(404)
                    return
                kind: OutcomeKind = "response" if match.group(2) == "response" else "error"
                known = api._finish(match.group(1), Outcome(kind, body, error_type))
                self._reply(202 if known else 400)

        return Handler
