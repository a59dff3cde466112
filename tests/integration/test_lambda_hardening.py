"""The local Lambda's loopback endpoints answer only its runtime, and both front doors judge
hostile requests the way the platforms do.

1. The Runtime API and the Secrets Manager stand-in admit only the runtime process the
   emulator started: from another user (uid 65534) and from another process of the same user,
   polling for the next invocation, posting a forged response and reading a secret (even with
   the run's session token) are refused 403, while real callers get the function's own
   answers. Run against the background supervisor, on every port it listens on but the front
   door.
2. Two `Authorization` headers get the same 400 from Lambda-local and from the deployed
   Cloud Run container (needs `scripts/services start`).
3. A 7 MB body gets a clean 413 (the client reads it: no reset); a request head that stalls
   is answered 408 and closed once `http1.HEAD_TIMEOUT` has passed, an idle connection once
   `function_url.IDLE_TIMEOUT` has; Cloud Run's local front door closes a stalled head too.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from orchestrator import processes
from orchestrator.paths import cache_root
from targets.aws_lambda import function_url, http1, peers
from targets.aws_lambda.emulator import LambdaEmulator, LambdaFunction
from targets.aws_lambda.local_runtime import runtime_python
from tests.conftest import REPO
from tests.integration.test_lambda_emulator import _emulator, function_zip
from tests.integration.test_local_deploy import INITIALIZE, TOKEN, cli, local_project

pytestmark = pytest.mark.integration

CANARY = "hardening-secret-canary-3c1e90"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

FUNCTION = """
import hashlib, json, os
import boto3

_ARNS = json.loads(os.environ["MCP_DEPLOY_SECRET_ARNS"])
_SECRET = boto3.client("secretsmanager").get_secret_value(SecretId=_ARNS["CANARY"])
_SEEN = hashlib.sha256(_SECRET["SecretString"].encode()).hexdigest()[:12]

def handler(event, context):
    body = {"real": True, "pid": os.getpid(), "secret": _SEEN, "path": event["rawPath"]}
    return {"statusCode": 200, "body": json.dumps(body)}
"""

# Run as another process (optionally as another user): every way in, on every port, at once.
ATTACK = r"""
import http.client, json, socket, sys, threading
ports, token, limit = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
API = "/2018-06-01/runtime/invocation"
secret = json.dumps({"SecretId": sys.argv[4]}).encode()
results, sent = {}, []

def attempt(port, name, method, path, body, headers):
    key = f"{port} {name}"
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=limit)
        conn.request(method, path, body=body, headers=headers)
        sent.append(key)
        response = conn.getresponse()
        results[key] = [response.status, response.read(300).decode("latin-1")]
        request_id = response.getheader("Lambda-Runtime-Aws-Request-Id")
        if request_id:  # took a caller's invocation: answer it with a forgery
            forged = json.dumps({"statusCode": 200, "body": json.dumps({"forged": True})})
            conn.request("POST", f"{API}/{request_id}/response", body=forged)
            results[key].append(conn.getresponse().status)
    except (socket.timeout, TimeoutError):
        results[key] = ["timeout", ""]
    except OSError as error:
        results[key] = [type(error).__name__, str(error)]
    finally:
        sent.append(key)

ways = (("next", "GET", f"{API}/next", None, {}),
        ("forge", "POST", f"{API}/0123/response", b'{"statusCode": 200}', {}),
        ("secret", "POST", "/", secret, {"X-Amz-Target": "secretsmanager.GetSecretValue",
                                          "X-Amz-Security-Token": token}))
threads = [threading.Thread(target=attempt, args=(p, *way)) for p in ports for way in ways]
for thread in threads:
    thread.start()
while len(set(sent)) < len(threads):  # every request is out (or already answered)
    threading.Event().wait(0.01)
print("sent", flush=True)
for thread in threads:
    thread.join()
print(json.dumps(results), flush=True)
"""


@dataclass
class Supervised:
    pid: int  # the supervisor's, leader of its process group
    url: str
    log: Path
    arn: str  # of the one secret


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervised]:
    """The background supervisor, as `deploy --env local` starts it, with one secret."""
    directory = tmp_path_factory.mktemp("hardening")
    function = LambdaFunction(
        name="hardening-local",
        zip_path=function_zip(directory, FUNCTION),
        python="3.11",
        memory=256,
        timeout=10,
        ephemeral_storage=512,
        region="eu-west-1",
        handler="fn.handler",
    )
    request = {
        "function": function.to_dict(),
        "secrets": {"CANARY": CANARY},
        "port": 0,
        "runtime_python": str(runtime_python("3.11")),
        "task_cache": str(cache_root() / "lambda-local" / "test-tasks"),
    }
    log = directory / "lambda.log"
    with log.open("ab") as sink:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "targets.aws_lambda.supervisor", str(log), "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sink,
            cwd=REPO,
            start_new_session=True,
        )
    assert supervisor.stdin is not None and supervisor.stdout is not None
    supervisor.stdin.write(json.dumps(request).encode())
    supervisor.stdin.close()
    with selectors.DefaultSelector() as selector:
        selector.register(supervisor.stdout, selectors.EVENT_READ)
        assert selector.select(60), "the supervisor did not answer"
    answer = json.loads(supervisor.stdout.readline())
    arn = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:hardening-local/CANARY-local"
    try:
        yield Supervised(supervisor.pid, answer["url"], log, arn)
    finally:
        os.killpg(supervisor.pid, signal.SIGTERM)
        try:
            supervisor.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait()


def real_call(url: str, path: str = "/") -> dict[str, Any]:
    response = httpx2.get(url + path, timeout=30)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def runtime_pid(supervisor: int) -> int:
    """The runtime process: awslambdaric, in the supervisor's process group."""
    for pid in processes.live_members(supervisor):
        if b"awslambdaric" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise AssertionError("no runtime process under the supervisor")


def session_token(pid: int) -> str:
    """What a process of the same user can read: the runtime's own environment."""
    for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if entry.startswith(b"AWS_SESSION_TOKEN="):
            return entry.split(b"=", 1)[1].decode()
    raise AssertionError("no session token in the runtime's environment")


def attack(ports: list[int], token: str, arn: str, prefix: list[str], url: str) -> dict[str, Any]:
    """Run ATTACK as another process; once its requests are out, call the function three
    times as a real caller would (each answer must be the function's own)."""
    with tempfile.TemporaryFile() as errors:  # (a file: a second pipe would race stdout)
        attacker = subprocess.Popen(
            [*prefix, sys.executable, "-I", "-c", ATTACK, json.dumps(ports), token, "5", arn],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        assert attacker.stdout is not None
        assert attacker.stdout.readline().strip() == "sent"
        answers = [real_call(url, f"/real-{n}") for n in range(3)]
        output = attacker.stdout.read()  # the same buffered reader: nothing read ahead is lost
        code = attacker.wait(60)
        errors.seek(0)
        said = errors.read().decode(errors="replace")
    assert output.strip(), f"the attacker said nothing (exit {code}): {said}"
    results: dict[str, Any] = json.loads(output)
    expected = [{"real": True, "path": f"/real-{n}"} for n in range(3)]
    assert [{k: a.get(k) for k in ("real", "path")} for a in answers] == expected, results
    return results


def test_only_the_runtime_may_use_the_runtime_api_and_the_secrets(
    supervised: Supervised,
) -> None:
    warm = real_call(supervised.url)  # cold start: the runtime reads its secret, then polls
    assert warm["secret"] == hashlib.sha256(CANARY.encode()).hexdigest()[:12]
    front = int(supervised.url.rsplit(":", 1)[1])
    inner = [p for p in processes.listening_ports(supervised.pid) if p != front]
    assert len(inner) == 2, inner  # the Runtime API and the Secrets Manager stand-in
    runtime = runtime_pid(supervised.pid)
    token = session_token(runtime)

    # Another user (who cannot read the token), then another process of the same user.
    for prefix, presented in ((NOBODY, "no-token"), ([], token)):
        results = attack(inner, presented, supervised.arn, prefix, supervised.url)
        assert len(results) == 6 and all(v[0] == 403 for v in results.values()), results

    # The test process itself, with the token: refused too.
    headers = {"X-Amz-Target": "secretsmanager.GetSecretValue", "X-Amz-Security-Token": token}
    for port in inner:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", "/", json.dumps({"SecretId": supervised.arn}), headers)
        response = conn.getresponse()
        assert response.status == 403 and CANARY.encode() not in response.read()

    after = real_call(supervised.url)
    assert after["pid"] == warm["pid"] == runtime  # the same warm environment, still served
    assert "forged" not in supervised.log.read_text()


def test_a_body_over_6_mb_gets_a_clean_413(supervised: Supervised) -> None:
    port = int(supervised.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/", body=b"x" * (7 * 1024 * 1024))  # sends it all, then reads
    response = conn.getresponse()
    assert response.status == 413
    assert response.getheader("Connection") == "close"
    assert json.loads(response.read()) == {"Message": "Request must be smaller than 6291456 bytes"}
    real_call(supervised.url)  # and the function still serves


# -- bounded waits for request heads (in-process emulator, short limits) ---------------------


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaEmulator]:
    monkeypatch.setattr(http1, "HEAD_TIMEOUT", 1.0, raising=False)
    monkeypatch.setattr(function_url, "IDLE_TIMEOUT", 1.5, raising=False)
    source = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n"
    for running, _log in _emulator(tmp_path, source):
        yield running


def closed_after(url: str, first: bytes, limit: float) -> tuple[float, bytes]:
    """Connect, send `first`, then stall: (seconds until the server closed, what it sent).
    Fails when it is still open after `limit` seconds."""
    port = int(url.rsplit(":", 1)[1])
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(first)
        while (left := started + limit - time.monotonic()) > 0:
            client.settimeout(left)
            try:
                chunk = client.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                return time.monotonic() - started, received
            received += chunk
    raise AssertionError(f"still open after {limit} s (received {received!r})")


def test_a_stalled_request_head_is_answered_408_and_closed(emulator: LambdaEmulator) -> None:
    elapsed, received = closed_after(emulator.url, b"G", limit=http1.HEAD_TIMEOUT + 3)
    assert elapsed >= http1.HEAD_TIMEOUT - 0.2, elapsed
    assert received.startswith(b"HTTP/1.1 408 ")
    elapsed, received = closed_after(emulator.url, b"GET / HTTP/1.1\r\nHost: x\r\n", limit=4)
    assert received.startswith(b"HTTP/1.1 408 ")


def test_an_idle_connection_is_closed(emulator: LambdaEmulator) -> None:
    elapsed, received = closed_after(emulator.url, b"", limit=function_url.IDLE_TIMEOUT + 3)
    assert elapsed >= function_url.IDLE_TIMEOUT - 0.2 and received == b""
    # A request that keeps coming is served, then the idle limit starts again.
    port = int(emulator.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(2):
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"ok"


# -- ambiguous credentials: the same answer on Lambda and on Cloud Run ------------------------

HARDENING_ENV = """
[environments.hardening]
kind = "local"
secrets.MCP_AUTH_TOKEN = "env:TOOLBOX_LOCAL_TOKEN"
secrets.TOOLBOX_API_KEY = "env:TOOLBOX_LOCAL_API_KEY"
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The example deployed to its own local-kind environment on both targets."""
    spec = local_project(tmp_path_factory.mktemp("ambiguity") / "toolbox")
    spec.write_text(spec.read_text() + HARDENING_ENV)
    urls: dict[str, str] = {}
    try:
        for target in ("lambda", "cloudrun"):
            done = cli(spec, "deploy", "--target", target, "--env", "hardening", "--json")
            assert done.returncode == 0, done.stdout + done.stderr
            urls[target] = json.loads(done.stdout)["record"]["url"]
        yield urls
    finally:
        for target in ("lambda", "cloudrun"):
            cli(spec, "destroy", "--env", "hardening", "--target", target)


def post_with(url: str, authorizations: list[str]) -> tuple[int, bytes]:
    """POST initialize with these Authorization headers, each sent as a header of its own."""
    parts, body = urlsplit(url), json.dumps(INITIALIZE).encode()
    conn = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=60)
    conn.putrequest("POST", parts.path)
    for name, value in [("Authorization", value) for value in authorizations] + [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Content-Length", str(len(body))),
    ]:
        conn.putheader(name, value)
    conn.endheaders(body)
    response = conn.getresponse()
    return response.status, response.read()


@pytest.mark.parametrize(
    "authorizations",
    [
        [f"Bearer {TOKEN}", "Bearer someone-else"],
        ["Bearer someone-else", f"Bearer {TOKEN}"],
        [f"Bearer {TOKEN}", f"Bearer {TOKEN}"],
    ],
    ids=["right-then-wrong", "wrong-then-right", "right-twice"],
)
def test_two_authorization_headers_are_refused_alike(
    deployed: dict[str, str], authorizations: list[str]
) -> None:
    seen = {target: post_with(url, authorizations) for target, url in deployed.items()}
    statuses = {target: status for target, (status, _) in seen.items()}
    assert statuses == {"lambda": 400, "cloudrun": 400}, seen
    for _status, data in seen.values():
        assert json.loads(data)["error"] == "invalid_request"
    for url in deployed.values():  # one header still works
        assert post_with(url, [f"Bearer {TOKEN}"])[0] == 200


def test_the_peer_check_names_the_connecting_socket() -> None:
    """sock_diag and its /proc fallback agree; only the holder of the socket is admitted."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            accepted, theirs = server.accept()
            with accepted:
                ours = accepted.getsockname()
                inode = os.fstat(client.fileno()).st_ino
                assert peers.socket_inode(theirs, ours) == inode
                assert peers._inode_from_proc(theirs, ours, socket.AF_INET) == inode
                peer = peers.RuntimePeer()
                assert not peer.admits(ours, theirs)  # no runtime yet
                peer.pid = os.getpid()
                assert peer.admits(ours, theirs)
                peer.pid = 1
                assert not peer.admits(ours, theirs)


def test_cloud_run_front_door_closes_a_stalled_head(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same bound on Cloud Run's local front door (a plain close there)."""
    from targets.cloudrun import front_door

    monkeypatch.setattr(front_door, "HEAD_TIMEOUT", 1.0)
    with socket.socket() as upstream:  # connections wait in its backlog: enough here
        upstream.bind(("127.0.0.1", 0))
        upstream.listen()
        config = front_door.FrontDoorConfig("svc.run.app", upstream.getsockname()[1])
        door = front_door.FrontDoor(config)
        port = door.start_thread()
        try:
            elapsed, _received = closed_after(f"http://127.0.0.1:{port}", b"G", limit=4)
            assert elapsed >= 0.8, elapsed
        finally:
            door.stop_thread()
