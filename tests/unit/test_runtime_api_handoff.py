"""The local Runtime API's hand-off: a `next` that finds no work is parked and the invocation
is written to it directly; work queued before the runtime asks is answered at once; a parked
`next` is released 410 when its environment is reset; outcomes reach the caller."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import pytest

from targets.aws_lambda.runtime_api import PREFIX, Outcome, RuntimeAPI


@pytest.fixture
def api() -> Iterator[RuntimeAPI]:
    with RuntimeAPI("handoff-local", timeout=5) as running:
        yield running


def _next(connection: http.client.HTTPConnection) -> http.client.HTTPResponse:
    connection.request("GET", f"{PREFIX}/invocation/next")
    return connection.getresponse()


def _invoke_in_thread(api: RuntimeAPI, event: object) -> tuple[threading.Thread, list[Outcome]]:
    outcomes: list[Outcome] = []
    thread = threading.Thread(target=lambda: outcomes.append(api.invoke(event, 5)))
    thread.start()
    return thread, outcomes


def test_parked_next_gets_the_invocation_and_the_caller_its_outcome(api: RuntimeAPI) -> None:
    host, port = api.address.split(":")
    runtime = http.client.HTTPConnection(host, int(port), timeout=5)
    runtime.connect()
    # The runtime asks first (parked), then the invocation arrives: written to it directly.
    answers: list[tuple[int, dict[str, str], bytes]] = []

    def poll() -> None:
        response = _next(runtime)
        answers.append((response.status, dict(response.getheaders()), response.read()))

    poller = threading.Thread(target=poll)
    poller.start()
    assert api.polled.wait(5)
    thread, outcomes = _invoke_in_thread(api, {"n": 1})
    poller.join(5)
    status, headers, body = answers[0]
    assert status == 200 and json.loads(body) == {"n": 1}
    request_id = headers["Lambda-Runtime-Aws-Request-Id"]
    assert headers["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:handoff-local")
    assert int(headers["Lambda-Runtime-Deadline-Ms"]) > 0
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    # The same keep-alive connection posts the outcome.
    runtime.request("POST", f"{PREFIX}/invocation/{request_id}/response", b'{"ok": true}')
    accepted = runtime.getresponse()
    assert accepted.status == 202
    accepted.read()
    thread.join(5)
    assert outcomes[0].kind == "response" and outcomes[0].json() == {"ok": True}
    # Work queued before the runtime asks is answered at once.
    thread, outcomes = _invoke_in_thread(api, {"n": 2})
    response = _next(runtime)
    assert response.status == 200 and json.loads(response.read()) == {"n": 2}
    request_id = response.getheader("Lambda-Runtime-Aws-Request-Id") or ""
    runtime.request("POST", f"{PREFIX}/invocation/{request_id}/error", b'{"errorType": "X"}')
    assert runtime.getresponse().status == 202
    thread.join(5)
    assert outcomes[0].kind == "error"
    runtime.close()


def test_reset_releases_a_parked_next(api: RuntimeAPI) -> None:
    host, port = api.address.split(":")
    runtime = http.client.HTTPConnection(host, int(port), timeout=5)
    statuses: list[int] = []
    poller = threading.Thread(target=lambda: statuses.append(_next(runtime).status))
    poller.start()
    assert api.polled.wait(5)
    api.reset()
    poller.join(5)
    assert statuses == [410]
    runtime.close()
