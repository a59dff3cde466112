"""The Lambda Runtime API (version 2018-06-01) on loopback, for one execution environment.

AWS's runtime client (`awslambdaric`) long-polls `GET /runtime/invocation/next`, runs the
handler, and posts the outcome to `.../invocation/<id>/response` or `.../<id>/error`; a failure
while importing the handler goes to `/runtime/init/error`. `invoke()` queues an event and waits
for its outcome, with the request id, deadline, function ARN and trace id headers Lambda sends.

The server runs on its own asyncio event loop in a background thread (`loop`), which other
loopback servers of the same emulation may share; `invoke_async` is for coroutines on that
loop, `invoke` for any other thread. Only 127.0.0.1 is ever bound.

Hand-off: a runtime's `next` that finds no invocation is parked with its connection; an
invocation queued while one is parked is written to that connection at once, in the same step
of the loop (no queue, no task wake-up between the caller and the runtime). When the runtime
posts the outcome, the caller's task runs before the `202` goes back to the runtime, so the
answer to the caller leaves first.

Given `extensions` (`extensions_api.ExtensionsAPI`), the same server answers the Extensions
API (`/2020-01-01/extension/...`), as Lambda does at the same address.

Given a `peer` (`peers.RuntimePeer`), each accepted connection is checked once: a connection
that no process of the execution environment made is answered 403 and closed before any
request of it is read, so no other local process (of this user or another) can take an
invocation, read its event, post an outcome or pose as an extension. Without one (tests that
start their own runtime) it answers anyone.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from targets.aws_lambda.extensions_api import PREFIX as EXTENSIONS_PREFIX
from targets.aws_lambda.extensions_api import ExtensionsAPI
from targets.aws_lambda.http1 import Request, answer_and_close, response, serve_connection
from targets.aws_lambda.peers import RuntimePeer

PREFIX = "/2018-06-01/runtime"
_OUTCOME = re.compile(rf"^{PREFIX}/invocation/([^/]+)/(response|error)$")
MAX_RESPONSE = 6 * 1024 * 1024 + 1024  # Lambda's response limit, plus room for the envelope
_CLOSE = {"Content-Type": "application/json", "Connection": "close"}
FORBIDDEN = response(
    403,
    b'{"errorType":"Forbidden","errorMessage":"only the processes of this execution '
    b'environment may use its Runtime API"}',
    _CLOSE,
)
TOO_LARGE = response(413, b'{"errorType":"RequestTooLarge"}', _CLOSE)
ACCEPTED = response(202)
GONE = response(410)  # a `next` released by reset() or stop(): this runtime is gone

OutcomeKind = Literal["response", "error", "init_error", "timeout", "exited"]
T = TypeVar("T")


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
    trace_id: str
    done: asyncio.Future[Outcome] = field(repr=False)


@dataclass
class _Poller:
    """A runtime's `next` waiting for work: `answered` gets what its connection is still to be
    sent (empty when the invocation was written to `writer` already)."""

    writer: asyncio.StreamWriter
    answered: asyncio.Future[bytes] = field(repr=False)


class RuntimeAPI:
    """A Runtime API server for one function; use as a context manager or start()/stop()."""

    def __init__(
        self,
        function_name: str,
        *,
        region: str = "us-east-1",
        account: str = "000000000000",
        timeout: float = 30.0,
        peer: RuntimePeer | None = None,
        extensions: ExtensionsAPI | None = None,
    ) -> None:
        self.function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.timeout = timeout
        self.init_error: Outcome | None = None
        self.polled = threading.Event()  # set when the runtime first asks for work (init done)
        self.loop = asyncio.new_event_loop()
        self._pending: deque[_Invocation] = deque()  # queued, no runtime asked for it yet
        self._pollers: deque[_Poller] = deque()  # runtimes waiting in `next`
        self._inflight: dict[str, _Invocation] = {}
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._port = 0
        self._peer = peer
        self.extensions = extensions

    @property
    def address(self) -> str:
        """`127.0.0.1:PORT`, the value of AWS_LAMBDA_RUNTIME_API."""
        return f"127.0.0.1:{self._port}"

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the API's loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def start(self) -> RuntimeAPI:
        self._thread.start()
        self._server = self.call(self._open())
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _open(self) -> asyncio.Server:
        return await asyncio.start_server(self._connection, "127.0.0.1", 0)

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            self.call(self._close(server))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    async def _close(self, server: asyncio.Server) -> None:
        server.close()
        self._release()  # a runtime still long-polling
        if self.extensions is not None:
            self.extensions.end()  # and extensions waiting for an event

    def __enter__(self) -> RuntimeAPI:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def invoke(
        self, event: Any, timeout: float | None = None, request_id: str | None = None
    ) -> Outcome:
        """Queue `event` and wait for its outcome (from any thread but the loop's)."""
        return self.call(self.invoke_async(event, timeout, request_id))

    async def invoke_async(
        self,
        event: Any,
        timeout: float | None = None,
        request_id: str | None = None,
        *,
        deadline_ms: int | None = None,
        trace_id: str | None = None,
    ) -> Outcome:
        """Queue `event` and wait for its outcome; a `timeout` outcome after `timeout`
        seconds. `deadline_ms` (epoch ms, default now + timeout) and `trace_id` are what the
        runtime is told (the emulator passes the values it also gives extensions)."""
        limit = self.timeout if timeout is None else timeout
        invocation = _Invocation(
            request_id=request_id or str(uuid.uuid4()),
            payload=json.dumps(event).encode(),
            deadline_ms=deadline_ms or int((time.time() + limit) * 1000),
            trace_id=trace_id or new_trace_id(),
            done=self.loop.create_future(),
        )
        self._inflight[invocation.request_id] = invocation
        self._hand_over(invocation)
        timer = self.loop.call_later(limit, _settle, invocation, Outcome("timeout"))
        try:
            return await invocation.done
        finally:
            timer.cancel()
            self._inflight.pop(invocation.request_id, None)

    def reset(self, outcome: Outcome | None = None) -> None:
        """Forget the current execution environment (its process is gone): every waiting
        invocation gets `outcome`, a runtime still long-polling is released, and the next
        runtime process starts from a clean slate (cold start). Callable from any thread."""
        if threading.current_thread() is self._thread:
            self._reset(outcome)
        elif self.loop.is_running():
            self.call(self._reset_async(outcome))

    async def _reset_async(self, outcome: Outcome | None) -> None:
        self._reset(outcome)

    def _reset(self, outcome: Outcome | None) -> None:
        self._pending.clear()
        self.init_error = None
        self.polled = threading.Event()
        self._release()
        for invocation in list(self._inflight.values()):
            _settle(invocation, outcome or Outcome("exited"))

    def _hand_over(self, invocation: _Invocation) -> None:
        """Write `invocation` to a parked runtime's connection, else queue it."""
        while self._pollers:
            poller = self._pollers.popleft()
            if poller.answered.done() or poller.writer.is_closing():
                continue  # its connection is gone
            poller.writer.write(self._next_response(invocation))
            poller.answered.set_result(b"")
            return
        self._pending.append(invocation)

    def _release(self) -> None:
        """Answer every parked `next` 410: its runtime is gone (reset or stop)."""
        while self._pollers:
            poller = self._pollers.popleft()
            if not poller.answered.done():
                poller.answered.set_result(GONE)

    def _next_response(self, invocation: _Invocation) -> bytes:
        return response(
            200,
            invocation.payload,
            {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            },
        )

    def _fail_init(self, outcome: Outcome) -> None:
        self.init_error = outcome
        for invocation in list(self._inflight.values()):
            _settle(invocation, outcome)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._peer is not None and not self._peer.admits(
            writer.get_extra_info("sockname"), writer.get_extra_info("peername")
        ):
            await answer_and_close(reader, writer, FORBIDDEN)
            return

        async def answer(request: Request) -> bytes:
            return await self._answer(request, writer)

        await serve_connection(reader, writer, answer, MAX_RESPONSE, TOO_LARGE)

    async def _answer(self, request: Request, writer: asyncio.StreamWriter) -> bytes:
        if self.extensions is not None and request.target.startswith(EXTENSIONS_PREFIX + "/"):
            return await self.extensions.answer(request)
        if request.method == "GET":
            if request.target != f"{PREFIX}/invocation/next":
                return response(404)
            self.polled.set()
            if self._pending:
                return self._next_response(self._pending.popleft())
            poller = _Poller(writer, self.loop.create_future())
            self._pollers.append(poller)
            try:
                return await poller.answered  # b"": `_hand_over` wrote the invocation
            finally:
                if not poller.answered.done():  # cancelled: its connection is gone
                    poller.answered.cancel()
        error_type = request.header("lambda-runtime-function-error-type") or None
        if request.target == f"{PREFIX}/init/error":
            self._fail_init(Outcome("init_error", request.body, error_type))
            return ACCEPTED
        match = _OUTCOME.match(request.target)
        if match is None:
            return response(404)
        kind: OutcomeKind = "response" if match.group(2) == "response" else "error"
        invocation = self._inflight.get(match.group(1))
        if invocation is None:
            return response(400)
        _settle(invocation, Outcome(kind, request.body, error_type))
        await asyncio.sleep(0)  # the caller's task first: its answer leaves before the 202
        return ACCEPTED


def new_trace_id() -> str:
    """An X-Ray trace header value, as Lambda gives each invocation."""
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"


def _settle(invocation: _Invocation, outcome: Outcome) -> None:
    if not invocation.done.done():
        invocation.done.set_result(outcome)
