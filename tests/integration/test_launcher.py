"""mcp-deploy's launcher (`targets/shim/launcher`), built for this machine and run for real in
front of a small Python "server" (a `#!` script serving HTTP on $PORT): the auth gate answers
exactly as `mcp_deploy_gate` does, requests reach the server with Host 127.0.0.1:<its port>,
config and secrets (stdin form and Secrets Manager form, signatures checked with botocore)
reach its environment, server-sent events are not buffered, SIGTERM ends both cleanly, and
every start-up failure exits non-zero with a message naming what failed, never a value.
The build itself is checked to be reproducible, for both CPUs."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials as BotoCredentials  # type: ignore[import-untyped]

from orchestrator.build import launcher as launcher_build
from orchestrator.build.launcher import (
    EXECUTABLE_NAME,
    LAUNCHER_DIR,
    build_launcher,
    download_modules,
    go_environment,
    go_toolchain,
    launcher_binary,
    launcher_sources,
)
from orchestrator.errors import OperationError
from targets.aws_lambda.secrets_local import Credentials, SecretsManagerStub, secret_arn
from targets.base import host_architecture
from targets.shim.mcp_deploy_gate import REFUSALS
from tests.support.net import free_port, wait_for_port

pytestmark = pytest.mark.integration

TOKEN = "launcher-token-5b1e0c"
CANARY = "launcher-canary-c41d9e77"
REGION = "eu-west-1"
WATCHED = [
    "GREETING",
    "HOST",
    "PORT",
    "MCP_AUTH_TOKEN",
    "API_KEY",
    "MCP_DEPLOY_SECRET_ARNS",
    "MCP_DEPLOY_SECRETS_STDIN",
]

SERVER = """\
import hashlib, json, os, signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WATCHED = {watched!r}
release = threading.Event()
print("server starting", flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def answer(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, data):
        self.wfile.write(b"%x\\r\\n%s\\r\\n" % (len(data), data))

    def do_GET(self, body=b""):
        if self.path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.chunk(b"data: one\\n\\n")
            self.chunk(b"data: two\\n\\n" if release.wait(10) else b"data: late\\n\\n")
            self.chunk(b"")
            return
        if self.path == "/release":
            release.set()
        if self.path == "/die":
            threading.Timer(0.1, lambda: os._exit(5)).start()
        self.answer({{
            "path": self.path,
            "host": self.headers.get("Host"),
            "forwarded_host": self.headers.get("X-Forwarded-Host"),
            "forwarded_proto": self.headers.get("X-Forwarded-Proto"),
            "forwarded_for": self.headers.get("X-Forwarded-For"),
            "origin": self.headers.get("Origin"),
            "authorization": self.headers.get("Authorization"),
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "cwd": os.getcwd(),
            "env": {{name: os.environ.get(name) for name in WATCHED}},
            "body": hashlib.sha256(body).hexdigest(),
        }})

    def do_POST(self):
        self.do_GET(self.rfile.read(int(self.headers.get("Content-Length") or 0)))


server = ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler)
server.daemon_threads = True
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
print("server stopped cleanly", flush=True)
"""

CONFIG = {
    "runtime": "binary",
    "binary": "bin/server",
    "path": "/mcp",
    "health_path": "/health",
    "auth": {"mode": "bearer", "token_env": "MCP_AUTH_TOKEN"},
    "secrets": ["API_KEY", "MCP_AUTH_TOKEN"],
}


@pytest.fixture(scope="module")
def launcher() -> Path:
    return launcher_binary(host_architecture(), lambda _: None)


@dataclass
class Launched:
    """A launcher process started by a test, its port and its output files."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    def output(self) -> str:
        return "".join(
            (self.directory / name).read_text(errors="replace") for name in ("out", "err")
        )

    def stderr(self) -> str:
        return (self.directory / "err").read_text(errors="replace")

    def wait(self, timeout: float = 15) -> int:
        code = self.process.wait(timeout)
        output = self.output()
        assert TOKEN not in output and CANARY not in output, "a secret value reached the log"
        return code

    def ready(self) -> Launched:
        wait_for_port(
            "127.0.0.1",
            self.port,
            timeout=30,
            gone=lambda: self.process.poll() is not None,
            describe=self.output,
        )
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(12)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request(
        self,
        path: str,
        headers: list[tuple[str, str]] | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.putrequest(
                method, path, skip_host=any(k == "Host" for k, _ in headers or [])
            )
            for name, value in headers or []:
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            connection.close()

    def echo(self, path: str = "/mcp", **extra: Any) -> dict[str, Any]:
        status, _, body = self.request(path, [("Authorization", f"Bearer {TOKEN}")], **extra)
        assert status == 200, body
        result: dict[str, Any] = json.loads(body)
        return result


def server_dir(tmp: Path, launcher: Path, script: str = SERVER) -> Path:
    """A task directory as an artifact lays it out: launcher, config, bin/server."""
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy2(launcher, tmp / EXECUTABLE_NAME)
    (tmp / "mcp_deploy_runtime.json").write_text(json.dumps(CONFIG))
    (tmp / "bin").mkdir()
    server = tmp / "bin" / "server"
    server.write_text(f"#!{sys.executable}\n" + script.format(watched=WATCHED))
    server.chmod(0o755)
    return tmp


def start(
    directory: Path,
    env: dict[str, str | None],
    secrets: dict[str, str] | None = None,
    wrapper: tuple[str, ...] = (),
) -> Launched:
    """Start the launcher in `directory` (under `wrapper`, a command prefix) with a clean
    environment (PATH, GREETING, PORT and MCP_DEPLOY_HOST=127.0.0.1, changed by `env`; None
    removes), `secrets` on stdin."""
    environment = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "GREETING": "hello"}
    environment.update({"PORT": str(free_port()), "MCP_DEPLOY_HOST": "127.0.0.1"})
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    port = int(environment.get("AWS_LWA_PORT") or environment["PORT"])
    if secrets is not None:
        environment["MCP_DEPLOY_SECRETS_STDIN"] = "1"
    with (directory / "out").open("wb") as out, (directory / "err").open("wb") as err:
        process = subprocess.Popen(
            [*wrapper, str(directory / EXECUTABLE_NAME)],
            env=environment,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
        )
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # a launcher that fails early reads nothing
        if secrets is not None:
            process.stdin.write(json.dumps(secrets).encode() + b"\n")
        process.stdin.close()
    return Launched(process, port, directory)


@pytest.fixture
def served(launcher: Path, tmp_path: Path) -> Iterator[Launched]:
    """The launcher in bearer mode, secrets given on stdin (the Cloud Run emulation's way)."""
    launched = start(
        server_dir(tmp_path, launcher), {}, {"MCP_AUTH_TOKEN": TOKEN, "API_KEY": CANARY}
    )
    yield launched.ready()
    launched.stop()
    assert TOKEN not in launched.output() and CANARY not in launched.output()


def test_the_gate_refuses_as_the_python_gate_does(served: Launched) -> None:
    cases = {
        401: [[], [("Authorization", "Bearer wrong")], [("Authorization", f"Basic {TOKEN}")]],
        400: [
            [("Authorization", f"Bearer {TOKEN}"), ("Authorization", f"Bearer {TOKEN}")],
            [("Authorization", f"Bearer {TOKEN},Bearer wrong")],
        ],
    }
    for status, header_sets in cases.items():
        fields, body = REFUSALS[status]
        for headers in header_sets:
            got, answer_headers, answer = served.request("/mcp", headers)
            assert (got, answer) == (status, body)
            for name, value in fields.items():
                assert answer_headers[name] == value
    status, _, body = served.request("/health")
    assert status == 200 and json.loads(body)["path"] == "/health"


def test_requests_reach_the_server_as_from_loopback(served: Launched) -> None:
    front = "demo-abc123-ew.a.run.app"
    payload = os.urandom(3 * 1024 * 1024)
    status, _, raw = served.request(
        "/mcp?x=1",
        [
            ("Host", front),
            ("Authorization", f"Bearer {TOKEN}"),
            ("Origin", f"https://{front}"),  # its own: checked by the gate, then removed
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "spoofed.example"),  # replaced by the public host
            ("X-Forwarded-For", "203.0.113.7"),
        ],
        method="POST",
        body=payload,
    )
    assert status == 200, raw
    echo = json.loads(raw)
    child_port = int(echo["env"]["PORT"])
    assert child_port != served.port
    assert echo["host"] == f"127.0.0.1:{child_port}"
    assert echo["forwarded_host"] == front
    assert echo["forwarded_proto"] == "https"
    assert echo["forwarded_for"] == "203.0.113.7, 127.0.0.1"
    assert echo["origin"] is None
    assert echo["path"] == "/mcp?x=1"
    assert echo["body"] == hashlib.sha256(payload).hexdigest()
    assert echo["cwd"] == str(served.directory)
    assert echo["env"] == {
        "GREETING": "hello",
        "HOST": "127.0.0.1",
        "PORT": str(child_port),
        "MCP_AUTH_TOKEN": None,  # the gate's token: never the server's
        "API_KEY": CANARY,
        "MCP_DEPLOY_SECRET_ARNS": None,
        "MCP_DEPLOY_SECRETS_STDIN": None,
    }


def test_server_sent_events_are_not_buffered(served: Launched) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
    try:
        connection.request("GET", "/sse", headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        assert response.getheader("Content-Type") == "text/event-stream"
        # The server sends the second event only after /release: buffering would time out.
        assert response.readline() == b"data: one\n"
        assert response.readline() == b"\n"
        served.echo("/release")
        assert response.read() == b"data: two\n\n"
    finally:
        connection.close()


def test_sigterm_ends_the_launcher_and_the_server_cleanly(served: Launched) -> None:
    pid = served.echo()["pid"]
    started = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    assert served.wait() == 0, served.output()
    assert time.monotonic() - started < 8
    assert not Path(f"/proc/{pid}").exists()  # ended and reaped
    assert "server stopped cleanly" in served.output()


def test_a_server_that_ignores_sigterm_is_killed_after_the_grace(
    launcher: Path, tmp_path: Path
) -> None:
    script = SERVER.replace(
        "signal.signal(signal.SIGTERM, lambda *_:",
        "signal.signal(signal.SIGTERM, signal.SIG_IGN) #",
    )
    launched = start(server_dir(tmp_path, launcher, script), {}, {"MCP_AUTH_TOKEN": TOKEN})
    pid = launched.ready().echo()["pid"]
    started = time.monotonic()
    launched.process.send_signal(signal.SIGTERM)
    assert launched.wait() == 1
    assert 7.5 < time.monotonic() - started < 10
    assert "did not end within 8s of SIGTERM" in launched.stderr()
    assert not Path(f"/proc/{pid}").exists()


def children(pid: int) -> dict[int, str]:
    """pid -> state (R, S, Z, ...) of the processes whose parent is `pid`."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == str(pid):
                found[int(stat.parent.name)] = fields[0]
    return found


def test_as_pid_1_the_launcher_reaps_orphans(launcher: Path, tmp_path: Path) -> None:
    """In a container (Cloud Run) the launcher is PID 1: orphans of the server become its
    children, and it must reap them. Run in a PID namespace of our own."""
    wrapper = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL")
    if subprocess.run([*wrapper, "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("needs unshare and the right to create a PID namespace")
    script = SERVER.replace(
        "release = threading.Event()",
        "release = threading.Event()\n"
        "import subprocess\n"
        "subprocess.Popen(['/bin/sh', '-c', '(sleep 0.2) & exit 0']).wait()  # an orphan",
    )
    directory = server_dir(tmp_path, launcher, script)
    launched = start(directory, {}, {"MCP_AUTH_TOKEN": TOKEN}, wrapper=wrapper).ready()
    try:
        assert launched.echo()["ppid"] == 1  # the launcher is PID 1 in the namespace
        (launcher_pid,) = children(launched.process.pid)
        time.sleep(1)  # the orphan has ended by now
        assert list(children(launcher_pid).values()) == ["S"]  # the server, no zombie
        os.kill(launcher_pid, signal.SIGTERM)
        assert launched.wait() == 0
    finally:
        launched.stop()


def test_a_server_that_dies_ends_the_launcher(served: Launched) -> None:
    served.echo("/die")
    assert served.wait() == 5
    assert "ended on its own (exit status 5)" in served.stderr()


def test_a_server_that_cannot_start_fails_the_launch(launcher: Path, tmp_path: Path) -> None:
    script = "import sys\nprint('cannot start: no database', file=sys.stderr)\nsys.exit(3)\n"
    launched = start(server_dir(tmp_path, launcher, script), {}, {"MCP_AUTH_TOKEN": TOKEN})
    assert launched.wait() == 3
    stderr = launched.stderr()
    assert "cannot start: no database" in stderr
    assert "bin/server exited before it listened" in stderr and "(exit status 3)" in stderr


@pytest.mark.parametrize("token", ["", "two,tokens"])
def test_a_bad_token_secret_fails_closed(launcher: Path, tmp_path: Path, token: str) -> None:
    launched = start(
        server_dir(tmp_path, launcher), {}, {"MCP_AUTH_TOKEN": token, "API_KEY": CANARY}
    )
    assert launched.wait() == 1
    assert "token secret MCP_AUTH_TOKEN" in launched.stderr()
    assert "server starting" not in launched.output()  # never started
    assert token == "" or token not in launched.output()


def test_a_missing_runtime_config_is_named(launcher: Path, tmp_path: Path) -> None:
    directory = server_dir(tmp_path, launcher)
    (directory / "mcp_deploy_runtime.json").unlink()
    launched = start(directory, {}, {"MCP_AUTH_TOKEN": TOKEN})
    assert launched.wait() == 1
    assert str(directory / "mcp_deploy_runtime.json") in launched.stderr()


# -- the Lambda form: secrets from Secrets Manager ---------------------------------------


def lambda_environment(
    endpoint: str, credentials: Credentials, arns: dict[str, str]
) -> dict[str, str | None]:
    """What Lambda (and mcp-deploy's deployment) give the bootstrap; binds by Lambda's rule."""
    return {
        **credentials.environment(),
        "MCP_DEPLOY_SECRET_ARNS": json.dumps(arns),
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",
        "AWS_LWA_PORT": str(free_port()),
        "MCP_DEPLOY_HOST": None,
    }


@pytest.fixture
def stub() -> Iterator[tuple[SecretsManagerStub, Credentials, dict[str, str]]]:
    credentials = Credentials.generate()
    arns = {name: secret_arn(REGION, "demo", name) for name in ("MCP_AUTH_TOKEN", "API_KEY")}
    values = {arns["MCP_AUTH_TOKEN"]: TOKEN, arns["API_KEY"]: CANARY}
    running = SecretsManagerStub(values, credentials, peer=None).start()
    yield running, credentials, arns
    running.stop()


def test_secrets_come_from_secrets_manager(
    launcher: Path, tmp_path: Path, stub: tuple[SecretsManagerStub, Credentials, dict[str, str]]
) -> None:
    running, credentials, arns = stub
    env = lambda_environment(running.endpoint, credentials, arns)
    launched = start(server_dir(tmp_path, launcher), env).ready()
    try:
        echo = launched.echo("/echo")  # not the MCP path: on Lambda a GET there is 405
        assert echo["env"]["API_KEY"] == CANARY
        assert echo["env"]["MCP_AUTH_TOKEN"] is None  # the gate's, never the server's
        assert echo["env"]["MCP_DEPLOY_SECRET_ARNS"] is None
        assert launched.request("/mcp")[0] == 401
    finally:
        launched.stop()
    assert launched.wait() == 0


def test_a_missing_secret_fails_the_start_naming_it(
    launcher: Path, tmp_path: Path, stub: tuple[SecretsManagerStub, Credentials, dict[str, str]]
) -> None:
    running, credentials, arns = stub
    arns = {**arns, "MISSING_KEY": secret_arn(REGION, "demo", "MISSING_KEY")}
    launched = start(
        server_dir(tmp_path, launcher), lambda_environment(running.endpoint, credentials, arns)
    )
    assert launched.wait() == 1
    assert launched.stderr().splitlines() == [
        "mcp-deploy-launch: cannot read secret MISSING_KEY from Secrets Manager: "
        "ResourceNotFoundException: Secrets Manager can't find the specified secret."
    ]
    assert "server starting" not in launched.output()


def botocore_verdict(credentials: Credentials, headers: Any, path: str, body: bytes) -> str:
    """'ok' when the request's SigV4 signature is what botocore computes for it with
    `credentials` (as AWS would check it), else what is wrong."""
    found = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/secretsmanager/aws4_request, "
        r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
        headers.get("Authorization", ""),
    )
    if not found or found[1] != credentials.access_key_id or found[3] != REGION:
        return "wrong credential scope"
    signed = found[4].split(";")
    request = AWSRequest(
        "POST", f"http://{headers['Host']}{path}", {n: headers[n] for n in signed}, body
    )
    request.context["timestamp"] = headers["X-Amz-Date"]
    auth = SigV4Auth(BotoCredentials(*astuple(credentials)), "secretsmanager", REGION)
    expected = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    if found[2] != headers["X-Amz-Date"][:8] or "x-amz-security-token" not in signed:
        return "wrong date or session token unsigned"
    return "ok" if found[5] == expected else "signature does not match"


def verifying_endpoint(
    stub: SecretsManagerStub, credentials: Credentials
) -> tuple[ThreadingHTTPServer, list[tuple[str, str]]]:
    """Secrets Manager on loopback that checks each signature with botocore, throttles each
    secret's first read, then answers through `stub`; and its (SecretId, verdict) log."""
    verdicts: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            secret_id = json.loads(body)["SecretId"]
            verdict = botocore_verdict(credentials, self.headers, self.path, body)
            if verdict != "ok":
                status, payload = 403, {"__type": "SignatureDoesNotMatch", "message": verdict}
            elif all(seen != secret_id for seen, _ in verdicts):
                verdict, status = "throttled", 400
                payload = {"__type": "ThrottlingException", "message": "Rate exceeded"}
            else:
                token = self.headers.get("X-Amz-Security-Token", "")
                status, payload = stub.answer(self.headers["X-Amz-Target"], token, body)
            verdicts.append((secret_id, verdict))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, verdicts


@pytest.mark.parametrize("key_is_right", [True, False])
def test_secrets_manager_requests_are_signed_as_botocore_signs(
    launcher: Path,
    tmp_path: Path,
    stub: tuple[SecretsManagerStub, Credentials, dict[str, str]],
    key_is_right: bool,
) -> None:
    """Each read is signed as botocore signs it, and retried when throttled; signed with
    another secret key, the same check refuses it (so the check is real)."""
    running, credentials, arns = stub
    server, verdicts = verifying_endpoint(running, credentials)
    env = lambda_environment(f"http://127.0.0.1:{server.server_address[1]}", credentials, arns)
    if not key_is_right:
        env["AWS_SECRET_ACCESS_KEY"] = "another" + credentials.secret_access_key
    try:
        launched = start(server_dir(tmp_path, launcher), env)
        if key_is_right:
            assert launched.ready().echo("/echo")["env"]["API_KEY"] == CANARY
            launched.stop()
        assert launched.wait() == (0 if key_is_right else 1)
    finally:
        server.shutdown()
        server.server_close()
    if key_is_right:
        expected = [(arn, verdict) for arn in arns.values() for verdict in ("throttled", "ok")]
        assert sorted(verdicts) == sorted(expected)
    else:
        assert {verdict for _, verdict in verdicts} == {"signature does not match"}
        assert "SignatureDoesNotMatch: signature does not match" in launched.stderr()


# -- the build ---------------------------------------------------------------------------


def test_the_build_is_reproducible(launcher: Path, tmp_path: Path) -> None:
    """A cold build (own Go cache, another directory) gives the cached launcher's bytes."""
    go, _ = go_toolchain()
    started = time.monotonic()
    again = build_launcher(
        go, launcher_sources(), host_architecture(), tmp_path / "work", gocache=str(tmp_path / "go")
    )
    print(f"cold build: {time.monotonic() - started:.1f}s, {again.stat().st_size} bytes")
    assert again.read_bytes() == launcher.read_bytes()


def test_the_launchers_go_tests_pass() -> None:
    """`go test` of the launcher (its unit tests: gate, OAuth with keys made there and an
    issuer on loopback, SigV4 vectors, the stdio bridge), with the modules and environment
    its build uses."""
    go, _ = go_toolchain()
    arch = host_architecture()
    gomodcache = launcher_build._gomodcache(go, arch)
    download_modules(go, LAUNCHER_DIR, arch, gomodcache=gomodcache)
    env = go_environment(arch, gomodcache=gomodcache)
    env["GOFLAGS"] += " -count=1"
    finished = subprocess.run(
        [go, "test", "./..."],
        cwd=LAUNCHER_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-6000:] + finished.stderr[-3000:]
    assert re.search(r"^ok\s+mcp-deploy.dev/launcher", finished.stdout, re.MULTILINE)


def test_modules_come_from_the_module_cache_without_a_network(
    launcher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the modules are in the module cache, a cold build needs no proxy (one that
    refuses every connection here); with an empty module cache the same build fails, naming
    the modules and GOPROXY."""
    go, _ = go_toolchain()
    arch = host_architecture()
    monkeypatch.setenv("GOPROXY", f"http://127.0.0.1:{free_port()}")
    built = build_launcher(
        go,
        launcher_sources(),
        arch,
        tmp_path / "offline",
        gomodcache=launcher_build._gomodcache(go, arch),
    )
    assert built.read_bytes() == launcher.read_bytes()
    with pytest.raises(OperationError) as raised:
        build_launcher(
            go,
            launcher_sources(),
            arch,
            tmp_path / "empty",
            gomodcache=str(tmp_path / "no-modules"),
        )
    error = raised.value
    assert "could not download the Go modules of mcp-deploy's launcher" in error.message
    assert error.hint is not None and "GOPROXY" in error.hint and "golang-jwt" in error.hint
    assert error.detail is not None and "connection refused" in error.detail


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_the_launcher_is_a_static_stripped_linux_executable(arch: str) -> None:
    from elftools.elf.elffile import ELFFile

    path = launcher_binary(arch, lambda _: None)
    with path.open("rb") as handle:
        elf = ELFFile(handle)
        assert elf["e_machine"] == {"x86_64": "EM_X86_64", "arm64": "EM_AARCH64"}[arch]
        assert not any(segment["p_type"] == "PT_INTERP" for segment in elf.iter_segments())
        assert elf.get_section_by_name(".symtab") is None
    assert path.stat().st_size < 10 * 1024 * 1024
