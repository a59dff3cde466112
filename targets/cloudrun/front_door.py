"""Cloud Run's front door, locally: a small streaming reverse proxy on loopback.

In the cloud, requests reach a Cloud Run container through Google's front end, which presents
`Host: <service>-<hash>.<region>.run.app` and adds `X-Forwarded-For`, `X-Forwarded-Proto: https`,
`Forwarded: for="<client>";proto=https`, `X-Cloud-Trace-Context` and `traceparent`. The local
emulation does the same: the container listens on an internal loopback port, and this proxy
listens on the deployment's public port, rewrites each request's head that way and copies
bodies through as they arrive (Content-Length, chunked, or until close; SSE streams and
chunked responses are never buffered; a 101 upgrade becomes a two-way pipe). Each client
connection gets its own upstream connection, so keep-alive and ordering are the client's own.
A request whose Content-Length is over Cloud Run's 32 MiB HTTP/1 limit is answered 413; a
client connection that has not delivered a request's head `HEAD_TIMEOUT` (10 s) after the
proxy began waiting for it is closed.

Run in the CLI's process (`FrontDoor.start_thread`, for `run`) or as a background process of
its own session that outlives the CLI (`start_process`/`process_alive`/`stop_process`):
`python -m targets.cloudrun.front_door LOG OWNER` reads its `FrontDoorConfig` as JSON on stdin
(the arguments only make it findable: `find_processes`), answers
`{"port": N}` (or `{"error": ...}`) on stdout once it listens, and serves until SIGTERM/SIGINT
or until the container's first process ends (so it never outlives its container).
Standard library plus `orchestrator.processes`. Loopback peers only: not a general web proxy.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestrator import processes
from orchestrator.errors import OperationError
from targets.cloudrun import relay

DEFAULT_REGION = "us-central1"
MAX_REQUEST = 32 * 1024 * 1024  # Cloud Run's request size limit over HTTP/1
START_TIMEOUT = 30.0
STOP_GRACE = 5.0
# Seconds a client connection may take to deliver a request's head, counted from when the
# front door starts waiting for it (so it also bounds an idle keep-alive connection).
HEAD_TIMEOUT = 10.0
# What the background process keeps of the CLI's environment.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH")
_REPLACED = {"host", "x-forwarded-proto", "forwarded"}


def presented_host(project: str | None, service: str, region: str | None) -> str:
    """The Host Cloud Run presents for `service`: `<service>-<hash10>.<region>.run.app`, with
    a stable 10-character lowercase hash of (project, service) standing in for Cloud Run's own,
    and `us-central1` when no region is set."""
    digest = hashlib.sha256(f"{project or ''}\0{service}".encode()).digest()
    hash10 = base64.b32encode(digest).decode().lower()[:10]
    return f"{service}-{hash10}.{region or DEFAULT_REGION}.run.app"


@dataclass(frozen=True)
class FrontDoorConfig:
    """`host`: the Host header presented to the server; `upstream_port`: where the container
    listens on 127.0.0.1; `port`: the public port on 127.0.0.1 (0 picks a free one);
    `watch_pid`/`watch_started`: the container's first process (pid and start time, see
    `orchestrator.processes`), whose end also ends the background process (0: none)."""

    host: str
    upstream_port: int
    port: int = 0
    watch_pid: int = 0
    watch_started: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class FrontDoor:
    """The proxy for one deployment: `open()`/`close()` on a running loop, or
    `start_thread()`/`stop_thread()` to run it on its own loop in a daemon thread."""

    def __init__(self, config: FrontDoorConfig) -> None:
        self.config = config
        self.port = config.port
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def open(self) -> int:
        """Listen on 127.0.0.1 (raises OSError when the port is taken); return the port."""
        self._server = await asyncio.start_server(
            self._connection, "127.0.0.1", self.config.port, limit=relay.MAX_HEAD
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    def start_thread(self) -> int:
        """Serve from a daemon thread; return the port once it listens."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        port = loop.run_until_complete(self.open())
        self._thread = threading.Thread(target=loop.run_forever, name="front-door", daemon=True)
        self._thread.start()
        return port

    def stop_thread(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        self._loop = self._thread = None

    def _request_head(self, start: str, headers: relay.Headers, client: str) -> bytes:
        """The request head as Cloud Run's front end passes it on."""
        kept = [(k, v) for k, v in headers if k.lower() not in _REPLACED | {"expect"}]
        forwarded_for = relay.field(headers, "x-forwarded-for")
        kept = [(k, v) for k, v in kept if k.lower() != "x-forwarded-for"]
        trace = secrets.token_hex(16)
        span = secrets.randbits(63) or 1
        added = [
            ("Host", self.config.host),
            ("X-Forwarded-For", f"{forwarded_for}, {client}" if forwarded_for else client),
            ("X-Forwarded-Proto", "https"),
            ("Forwarded", f'for="{client}";proto=https'),
        ]
        if not relay.field(headers, "x-cloud-trace-context"):
            added.append(("X-Cloud-Trace-Context", f"{trace}/{span};o=1"))
        if not relay.field(headers, "traceparent"):
            added.append(("traceparent", f"00-{trace}-{span:016x}-01"))
        return relay.head(start, [added[0], *kept, *added[1:]])

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = str((writer.get_extra_info("peername") or ("127.0.0.1", 0))[0])
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            upstream = await asyncio.open_connection(
                "127.0.0.1", self.config.upstream_port, limit=relay.MAX_HEAD
            )
        except OSError:
            writer.write(relay.error(502, "Bad Gateway"))
        try:
            if upstream is not None:
                await self._serve(reader, writer, *upstream, client)
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            for end in (writer, upstream[1] if upstream else None):
                if end is not None:
                    with contextlib.suppress(OSError, RuntimeError):
                        end.close()

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        client: str,
    ) -> None:
        """Relay the connection's requests in order until either side ends it."""
        while True:
            try:
                async with asyncio.timeout(HEAD_TIMEOUT):
                    request = await relay.read_head(reader)
            except ValueError:
                writer.write(relay.error(400, "Bad Request"))
                return
            except TimeoutError:
                return  # a head that never completes (or no request at all): close
            if request is None:
                return
            start, headers = request
            method, version = start.split(" ", 1)[0], start.rsplit(" ", 1)[-1]
            length = relay.field(headers, "content-length").split(",")[0]
            if length.isdigit() and int(length) > MAX_REQUEST:
                writer.write(relay.error(413, "Payload Too Large"))
                return
            if relay.field(headers, "expect").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the front end answers it
            up_writer.write(self._request_head(start, headers, client))
            await relay.copy_body(reader, up_writer, headers, until_eof=False)
            response = await relay.read_head(up_reader)
            while response is not None and relay.status(response[0]).startswith("1"):
                writer.write(relay.head(*response))
                if relay.status(response[0]) == "101":
                    await self._upgrade(reader, writer, up_reader, up_writer)
                    return
                response = await relay.read_head(up_reader)
            if response is None:
                writer.write(relay.error(502, "Bad Gateway"))
                return
            status = relay.status(response[0])
            writer.write(relay.head(*response))
            await writer.drain()
            reusable = True
            if method != "HEAD" and status not in ("204", "304"):
                reusable = await relay.copy_body(up_reader, writer, response[1], until_eof=True)
            closing = "close" in (
                relay.field(headers, "connection") + relay.field(response[1], "connection")
            )
            if not reusable or closing or version != "HTTP/1.1":
                return

    async def _upgrade(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        await writer.drain()
        await asyncio.gather(relay.pipe(reader, up_writer), relay.pipe(up_reader, writer))


async def _serve_until_signalled(config: FrontDoorConfig, answer: Callable[[str], None]) -> int:
    door = FrontDoor(config)
    try:
        port = await door.open()
    except OSError as error:
        answer(json.dumps({"error": f"cannot listen on 127.0.0.1:{config.port}: {error}"}))
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    answer(json.dumps({"port": port}))
    watching = asyncio.create_task(_watch(config, stop)) if config.watch_pid else None
    await stop.wait()
    if watching is not None:
        watching.cancel()
    await door.close()
    return 0


async def _watch(config: FrontDoorConfig, stop: asyncio.Event) -> None:
    """Set `stop` once the watched process (the container's) has ended."""
    while processes.alive(config.watch_pid, config.watch_started):
        await asyncio.sleep(0.5)
    print("the container has stopped: closing the front door", file=sys.stderr, flush=True)
    stop.set()


def start_process(config: FrontDoorConfig, log: Path, owner: str = "") -> dict[str, Any]:
    """Start `python -m targets.cloudrun.front_door LOG OWNER` in its own session (stderr to
    `log`; `owner`, e.g. the container id, is there for `find_processes`); return once it
    listens, as JSON-ready data for a handle: {"pid", "started", "port", "log", "owner"}.
    Raises `OperationError` (nothing left running) when it cannot listen."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
    with log.open("ab") as sink:
        door = subprocess.Popen(
            [sys.executable, "-m", "targets.cloudrun.front_door", str(log), owner],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sink,
            start_new_session=True,
            env=env,
        )
    assert door.stdin is not None and door.stdout is not None
    door.stdin.write(config.to_json().encode())
    door.stdin.close()
    answer: dict[str, Any] = {"error": f"no answer within {START_TIMEOUT:.0f} s"}
    with selectors.DefaultSelector() as selector:
        selector.register(door.stdout, selectors.EVENT_READ)
        if selector.select(START_TIMEOUT):
            try:
                answer = json.loads(door.stdout.readline())
            except ValueError:
                answer = {"error": "it exited"}
    door.stdout.close()
    started = processes.start_time(door.pid)
    if "port" not in answer or started is None:
        if started is not None:
            processes.stop_group(door.pid, started, STOP_GRACE)
        door.wait(STOP_GRACE)
        raise OperationError(
            "the local Cloud Run front door did not start: " + str(answer.get("error")),
            hint="--port picks another port" if config.port else None,
            detail=processes.tail(log),
        )
    port = int(answer["port"])
    return {"pid": door.pid, "started": started, "port": port, "log": str(log), "owner": owner}


def find_processes(log: Path) -> list[dict[str, Any]]:
    """The running front door processes started with `log`, as `start_process` returns them
    (found from their command lines, without any state)."""
    found = []
    for pid in processes.find_by_argv("targets.cloudrun.front_door", str(log)):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        started, ports = processes.start_time(pid), processes.listening_ports(pid)
        owner = argv[argv.index(str(log)) + 1] if str(log) in argv[:-1] else ""
        if started is not None:
            port = ports[0] if ports else 0
            found.append(
                {"pid": pid, "started": started, "port": port, "log": str(log), "owner": owner}
            )
    return found


def watched_process(pid: int | None, container_id: str | None) -> tuple[int, str]:
    """(pid, start time) of a container's first process as this machine sees it, for
    `FrontDoorConfig.watch_pid`; (0, '') when it is not visible here (another PID namespace:
    the cgroup of `pid` does not name the container)."""
    try:
        cgroup = Path(f"/proc/{pid}/cgroup").read_text() if pid else ""
    except OSError:
        cgroup = ""
    visible = bool(pid and container_id and container_id in cgroup)
    started = processes.start_time(int(pid or 0)) if visible else None
    return (int(pid or 0), started) if started is not None else (0, "")


def process_alive(data: Mapping[str, Any]) -> bool:
    """True while the process `start_process` described with `data` runs."""
    return processes.alive(int(data["pid"]), str(data["started"]))


def stop_process(data: Mapping[str, Any]) -> None:
    """SIGTERM the front door's process group (SIGKILL after a grace period); raises
    `OperationError` when something of it still lives."""
    if not processes.stop_group(int(data["pid"]), str(data["started"]), STOP_GRACE):
        raise OperationError(f"could not stop the local Cloud Run front door (pid {data['pid']})")


def _answer_once(line: str) -> None:
    print(line, flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the CLI has stopped listening


def main() -> int:
    """`python -m targets.cloudrun.front_door`: config on stdin, answer on stdout."""
    config = FrontDoorConfig(**json.loads(sys.stdin.buffer.read()))
    sys.stdin.close()
    return asyncio.run(_serve_until_signalled(config, _answer_once))


if __name__ == "__main__":
    sys.exit(main())
