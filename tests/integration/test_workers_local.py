"""The local Workers runner, under real workerd from npm: a hand-written JS module Worker in a
bundle zip with its metadata, started in the background as `deploy --env local` does. It sees
its config and secret as bindings (`env`, and `process.env` under nodejs_compat from
2025-04-01), the workers.dev URL and Host, Cloudflare's headers; the secret is nowhere on
disk, in argv or in workerd's environment; `find` sees it from its command line; `stop`
leaves nothing; a broken module, a taken port, a Python bundle and a date beyond workerd fail
saying why; `run` serves in the foreground until interrupted."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import io
import json
import socket
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import processes
from orchestrator.artifacts import Artifact
from orchestrator.errors import OperationError
from orchestrator.paths import cache_root
from targets.base import LocalHandle, LocalLaunch
from targets.workers import TARGET, WorkersOptions
from targets.workers import local as workers_local
from targets.workers.workerd import (
    NEWEST_COMPATIBILITY_DATE,
    WORKERD_VERSION,
    newest_supported_date,
    workerd_binary,
)
from targets.workers.workerd_config import const_name

pytestmark = pytest.mark.integration

CANARY = "canary-3e9a61d0-secret"
GREETING = 'hé "quoted" \\ €\nsecond line'

WORKER = """\
import process from "node:process";
import words from "./lib/words.txt";
import settings from "./settings.json";
import empty from "./empty.wasm";
import helper from "./lib/helper.cjs";

async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/stream") {
      const { readable, writable } = new TransformStream();
      const writer = writable.getWriter();
      const encoder = new TextEncoder();
      ctx.waitUntil((async () => {
        await writer.write(encoder.encode("data: first\\n\\n"));
        await new Promise((resolve) => setTimeout(resolve, 1500));
        await writer.write(encoder.encode("data: second\\n\\n"));
        await writer.close();
      })());
      return new Response(readable, { headers: { "content-type": "text/event-stream" } });
    }
    console.log("worker-log-marker", request.method, url.pathname);
    return Response.json({
      url: request.url,
      method: request.method,
      headers: Object.fromEntries(request.headers),
      body: await request.text(),
      cf: request.cf ?? null,
      greeting: env.GREETING ?? null,
      processGreeting: process.env.GREETING ?? null,
      apiKeySha256: env.API_KEY === undefined ? null : await sha256(env.API_KEY),
      processApiKeySha256:
        process.env.API_KEY === undefined ? null : await sha256(process.env.API_KEY),
      modules: [
        words.trim(), settings.answer, empty instanceof WebAssembly.Module, helper.twice(21),
      ],
    });
  },
};
"""
MODULES = [
    {"name": "worker.mjs", "type": "esm"},
    {"name": "lib/words.txt", "type": "text"},
    {"name": "settings.json", "type": "json"},
    {"name": "empty.wasm", "type": "wasm"},
    {"name": "lib/helper.cjs", "type": "commonjs"},
]
FILES: dict[str, bytes] = {
    "worker.mjs": WORKER.encode(),
    "lib/words.txt": b"hello words\n",
    "settings.json": b'{"answer": 42}',
    "empty.wasm": b"\0asm\1\0\0\0",
    "lib/helper.cjs": b"module.exports = { twice: (n) => n * 2 };\n",
}


@pytest.fixture(scope="module")
def workerd() -> Path:
    return workerd_binary(lambda message: None)


def bundle_zip(
    directory: Path,
    files: dict[str, bytes] | None = None,
    date: str = "2025-09-01",
    flags: tuple[str, ...] = ("nodejs_compat",),
    modules: list[dict[str, str]] | None = None,
) -> Artifact:
    document = {
        "format": 1,
        "runtime": "node",
        "main_module": "worker.mjs",
        "modules": MODULES if modules is None else modules,
        "compatibility_date": date,
        "compatibility_flags": list(flags),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in (FILES if files is None else files).items():
            archive.writestr(name, data)
        archive.writestr("mcp_deploy_worker.json", json.dumps(document))
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = directory / f"{digest}.zip"
    path.write_bytes(data)
    return Artifact("workers-bundle", "workers", f"sha256:{digest}", len(data), "test", path)


def launch_of(
    tmp_path: Path, artifact: Artifact, port: int = 0, name: str = "state"
) -> LocalLaunch:
    return LocalLaunch(
        server="echo",
        environment="local",
        python="3.12",
        artifact=artifact,
        options=WorkersOptions(account_id="0123456789abcdef0123456789abcdef"),
        mcp_path="/mcp",
        variables={"GREETING": GREETING},
        secrets={"API_KEY": CANARY},
        state_dir=tmp_path / name,
        port=port,
        runtime="node",
    )


@pytest.fixture
def started(tmp_path: Path, workerd: Path) -> Iterator[tuple[LocalLaunch, LocalHandle]]:
    launch = launch_of(tmp_path, bundle_zip(tmp_path))
    handle = workers_local.start_background(launch)
    try:
        yield launch, handle
    finally:
        workers_local.stop(handle)


def call(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=body, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_the_pinned_workerd_is_the_one_installed(workerd: Path) -> None:
    """The version and the newest compatibility date it accepts, as pinned."""
    assert workerd.is_relative_to(cache_root() / "workerd" / WORKERD_VERSION)
    assert newest_supported_date(workerd) == NEWEST_COMPATIBILITY_DATE


def test_the_worker_sees_cloudflares_request_and_bindings(
    started: tuple[LocalLaunch, LocalHandle],
) -> None:
    _, handle = started
    assert TARGET.local_runtime() is workers_local
    host = handle.data["host"]
    assert host.startswith("echo-local.") and host.endswith(".workers.dev")
    answer = call(handle.url + "?x=1", b"payload", {"Host": "evil.example", "CF-Ray": "forged"})
    assert answer["url"] == f"https://{host}/mcp?x=1"
    assert answer["method"] == "POST" and answer["body"] == "payload"
    headers = answer["headers"]
    assert headers["host"] == host
    assert headers["x-forwarded-proto"] == "https" and headers["cf-connecting-ip"] == "127.0.0.1"
    assert headers["cf-visitor"] == '{"scheme":"https"}' and headers["cf-ray"].endswith("-LCL")
    assert answer["cf"]["httpProtocol"] == "HTTP/1.1"
    # Config as a plain_text binding and the secret as a secret_text one, in env and process.env.
    assert answer["greeting"] == GREETING and answer["processGreeting"] == GREETING
    digest = hashlib.sha256(CANARY.encode()).hexdigest()
    assert answer["apiKeySha256"] == digest and answer["processApiKeySha256"] == digest
    assert answer["modules"] == ["hello words", 42, True, 42]
    assert "worker-log-marker POST /mcp" in wait_for(lambda: workers_local.log_tail(handle))


def wait_for(read: Any, text: str = "worker-log-marker", timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while text not in (found := read()):
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    return str(found)


def test_the_secret_is_nowhere_but_in_workerd(
    started: tuple[LocalLaunch, LocalHandle],
) -> None:
    launch, handle = started
    call(handle.url)  # the Worker has run and logged
    pid = int(handle.data["pid"])
    proc = Path(f"/proc/{pid}")
    assert CANARY.encode() not in (proc / "cmdline").read_bytes()
    assert CANARY.encode() not in (proc / "environ").read_bytes()
    assert (proc / "fd" / "0").read_bytes() == b""  # the in-memory config, emptied
    digest = launch.artifact.digest.removeprefix("sha256:")
    written = [launch.state_dir, cache_root() / "workers-local" / "bundles" / digest]
    files = [path for root in written for path in root.rglob("*") if path.is_file()]
    assert any(path.name == "workerd.log" for path in files)
    assert any(path.name == "worker.mjs" for path in files)
    for path in files:
        assert CANARY.encode() not in path.read_bytes(), path


def test_find_alive_stop(started: tuple[LocalLaunch, LocalHandle]) -> None:
    launch, handle = started
    found = workers_local.find(launch.state_dir, "/mcp")
    assert [(h.url, h.data["pid"], h.data["started"]) for h in found] == [
        (handle.url, handle.data["pid"], handle.data["started"])
    ]
    assert workers_local.find(launch.state_dir.with_name("other"), "/mcp") == []
    assert workers_local.alive(handle)
    follow = workers_local.follow_log(found[0])
    later = threading.Timer(0.3, call, (handle.url,))
    later.start()
    assert "worker-log-marker GET /mcp" in next(follow)  # written after it began
    later.join()
    workers_local.stop(found[0])
    assert list(follow) == []  # it ends once workerd has
    assert not workers_local.alive(handle)
    assert processes.live_members(int(handle.data["pid"])) == []
    assert workers_local.find(launch.state_dir, "/mcp") == []
    workers_local.stop(handle)  # stopping what is gone is harmless


def test_responses_stream_through_the_edge(started: tuple[LocalLaunch, LocalHandle]) -> None:
    _, handle = started
    port = int(handle.url.split(":")[2].split("/")[0])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/stream")
    response = connection.getresponse()
    began = time.monotonic()
    first = response.readline() + response.readline()
    assert first == b"data: first\n\n" and time.monotonic() - began < 1.0
    assert response.read() == b"data: second\n\n" and time.monotonic() - began >= 1.0
    connection.close()


def test_a_body_over_cloudflares_limit_is_refused(
    started: tuple[LocalLaunch, LocalHandle],
) -> None:
    _, handle = started
    port = int(handle.url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 104857601\r\n\r\n")
        assert connection.recv(100).startswith(b"HTTP/1.1 413 ")


def test_process_env_is_not_populated_before_2025_04_01(tmp_path: Path, workerd: Path) -> None:
    """As on Cloudflare: nodejs_compat fills process.env from the bindings from that date."""
    launch = launch_of(tmp_path, bundle_zip(tmp_path, date="2025-03-01"))
    handle = workers_local.start_background(launch)
    try:
        answer = call(handle.url)
        assert answer["greeting"] == GREETING and answer["processGreeting"] is None
    finally:
        workers_local.stop(handle)


def test_a_broken_module_fails_with_workerds_error(tmp_path: Path, workerd: Path) -> None:
    files = {**FILES, "worker.mjs": b"export default { fetch( }"}
    launch = launch_of(tmp_path, bundle_zip(tmp_path, files))
    with pytest.raises(OperationError) as raised:
        workers_local.start_background(launch)
    assert "SyntaxError" in raised.value.message and "SyntaxError" in (raised.value.detail or "")
    assert CANARY not in (raised.value.detail or "")
    assert workers_local.find(launch.state_dir, "/mcp") == []


def test_a_taken_port_is_named(tmp_path: Path, workerd: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with pytest.raises(OperationError) as raised:
            workers_local.start_background(launch_of(tmp_path, bundle_zip(tmp_path), port))
    assert "Address already in use" in raised.value.message
    assert "--port" in (raised.value.hint or "")


def test_a_date_beyond_workerd_is_explained(tmp_path: Path) -> None:
    later = NEWEST_COMPATIBILITY_DATE + dt.timedelta(days=1)
    launch = launch_of(tmp_path, bundle_zip(tmp_path, date=later.isoformat()))
    with pytest.raises(OperationError) as raised:
        workers_local.start_background(launch)
    assert NEWEST_COMPATIBILITY_DATE.isoformat() in raised.value.message
    if later <= dt.date.today():  # the options refuse a future date
        found = workers_local.problem(WorkersOptions(compatibility_date=later), "node")
        assert found is not None and found.option == "compatibility_date"


def test_a_python_bundle_cannot_start_offline(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("wrangler.toml", 'main = "src/entry.py"\n')
        archive.writestr("mcp-deploy-workers.json", "{}")
        archive.writestr("src/entry.py", "")
    path = tmp_path / "python.zip"
    path.write_bytes(buffer.getvalue())
    artifact = Artifact("workers-bundle", "workers", "sha256:" + "1" * 64, 1, "test", path)
    with pytest.raises(OperationError, match="Python Workers cannot start offline"):
        workers_local.start_background(launch_of(tmp_path, artifact))


def test_run_in_the_foreground_until_interrupted(tmp_path: Path, workerd: Path) -> None:
    launch = launch_of(tmp_path, bundle_zip(tmp_path))
    seen: list[int] = []

    def ready(url: str) -> None:
        assert call(url)["greeting"] == GREETING
        seen.extend(processes.find_by_argv(const_name(launch.state_dir) + "Run"))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        workers_local.run_foreground(launch, ready)
    assert len(seen) == 1
    assert processes.live_members(seen[0]) == []
    assert workers_local.find(launch.state_dir, "/mcp") == []  # a foreground run is not found
