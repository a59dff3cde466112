"""Cloud Run, locally, presents Cloud Run's Host header through a front door.

- The front door on its own (a real uvicorn server behind it, no container): the server sees
  `Host: <service>-<hash>.<region>.run.app`, `X-Forwarded-Proto: https`, `X-Forwarded-For`,
  `Forwarded` and trace headers; chunked request bodies pass; a server-sent event stream
  arrives event by event (not buffered); stopping the process leaves nothing.
- Through the CLI (`deploy --target cloudrun --env local`), for an artifact with the official
  SDK 2.x (mcp==2.3.0) and one with 1.x (mcp==1.26.0), each server keeping the SDK's default
  DNS-rebinding protection (loopback hosts only): the deploy passes, because the shim presents
  each request to the app as a loopback one (Host 127.0.0.1:$PORT) with the run.app host in
  X-Forwarded-Host and https in X-Forwarded-Proto; it is found again without its state file.
  A server that allows only the run.app host is refused with 421 by its own check (the deploy
  fails its smoke test). A failed deploy and `destroy` leave no front door process and no
  container, and a front door ends when its container does.
- Lambda's local deploy names its Function URL host the same way, and its shim presents
  requests as loopback ones too.

Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from orchestrator import processes
from orchestrator.build.inspect import sdk_versions
from targets.cloudrun import front_door
from targets.cloudrun.front_door import FrontDoorConfig, presented_host
from tests.integration.test_example_servers import mcp_session, serve
from tests.support.example import example_copy

pytestmark = pytest.mark.integration

MCP_DEPLOY = str(Path(sys.executable).with_name("mcp-deploy"))
TOKEN = "frontdoor-token-canary-71c2e0"
API_KEY = "frontdoor-apikey-canary-3d9a55"
PROJECT, REGION = "acme-mcp", "europe-west1"  # the example's targets.cloudrun

ECHO = """
import asyncio
import json


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    if scope["path"] == "/events":
        start = {"type": "http.response.start", "status": 200,
                 "headers": [(b"content-type", b"text/event-stream")]}
        await send(start)
        for n in range(3):
            event = f"data: {n}\\n\\n".encode()
            await send({"type": "http.response.body", "body": event, "more_body": True})
            await asyncio.sleep(0.4)
        await send({"type": "http.response.body", "body": b""})
        return
    seen = {
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        "scheme": scope["scheme"],
        "size": size,
    }
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(seen).encode()})
"""

# What both servers share: GREETING for the smoke test, a `seen` tool answering what the last
# request looked like to the server, and ALLOWED_HOSTS (empty: the SDK's default protection).
RECORDER = """
import os

SEEN = {}
ALLOWED = [host for host in os.environ.get("ALLOWED_HOSTS", "").split(",") if host]


def greet(name: str) -> str:
    return f"{os.environ.get('GREETING', 'Hello')}, {name}!"


def seen() -> dict[str, str]:
    return dict(SEEN)


class Recorder:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            SEEN.clear()
            SEEN.update(headers, scheme=scope["scheme"])
        await self.app(scope, receive, send)
"""

APPS = {
    "mcp==2.3.0": """
        from mcp.server.mcpserver import MCPServer
        from mcp.server.transport_security import TransportSecuritySettings

        from toolbox.recorder import ALLOWED, Recorder, greet, seen

        mcp = MCPServer("toolbox")
        mcp.tool()(greet)
        mcp.tool()(seen)
        security = TransportSecuritySettings(allowed_hosts=ALLOWED) if ALLOWED else None
        app = Recorder(
            mcp.streamable_http_app(
                streamable_http_path="/mcp",
                stateless_http=True,
                json_response=True,
                transport_security=security,
            )
        )
    """,
    "mcp==1.26.0": """
        from mcp.server.fastmcp import FastMCP
        from mcp.server.transport_security import TransportSecuritySettings

        from toolbox.recorder import ALLOWED, Recorder, greet, seen

        security = TransportSecuritySettings(allowed_hosts=ALLOWED) if ALLOWED else None
        mcp = FastMCP(
            "toolbox", stateless_http=True, json_response=True, transport_security=security
        )
        mcp.tool()(greet)
        mcp.tool()(seen)
        app = Recorder(mcp.streamable_http_app())
    """,
}


def test_front_door_presents_cloud_run_headers_and_streams(tmp_path: Path) -> None:
    (tmp_path / "echo.py").write_text(textwrap.dedent(ECHO))
    host = presented_host(PROJECT, "echo-local", REGION)
    assert host.startswith("echo-local-") and host.endswith(f".{REGION}.run.app")
    assert host == presented_host(PROJECT, "echo-local", REGION)  # stable
    assert presented_host(None, "echo-local", None).endswith(".us-central1.run.app")
    with serve(tmp_path, "echo:app", {}) as (url, _log):
        upstream = int(url.split(":")[2].split("/")[0])
        log = tmp_path / "front_door.log"
        door = front_door.start_process(FrontDoorConfig(host, upstream), log)
        try:
            assert front_door.process_alive(door)
            base = f"http://127.0.0.1:{door['port']}"
            with httpx2.Client(timeout=10) as client:
                seen = client.post(f"{base}/x", content=iter([b"abc", b"defg"])).json()
                assert seen["size"] == 7 and seen["scheme"] == "https"
                headers = seen["headers"]
                assert headers["host"] == host
                assert headers["x-forwarded-proto"] == "https"
                assert headers["x-forwarded-for"] == "127.0.0.1"
                assert headers["forwarded"] == 'for="127.0.0.1";proto=https'
                trace, _, sampled = headers["x-cloud-trace-context"].partition(";")
                assert len(trace.split("/")[0]) == 32 and sampled == "o=1"
                assert headers["traceparent"].startswith(f"00-{trace.split('/')[0]}-")
                arrivals = []
                start = time.monotonic()
                with client.stream("GET", f"{base}/events") as events:
                    for chunk in events.iter_raw():
                        arrivals.append((time.monotonic() - start, chunk))
                assert b"".join(c for _, c in arrivals) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
                assert len(arrivals) >= 3 and arrivals[0][0] < 0.3  # not held back
                assert arrivals[-1][0] > 0.7
        finally:
            front_door.stop_process(door)
        assert not processes.live_members(int(door["pid"]))


def test_front_door_process_ends_with_the_watched_process(tmp_path: Path) -> None:
    """The background front door never outlives its container's process."""
    container = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = processes.start_time(container.pid)
    assert started is not None
    config = FrontDoorConfig("x.run.app", 9, watch_pid=container.pid, watch_started=started)
    door = front_door.start_process(config, tmp_path / "front_door.log")
    try:
        time.sleep(1)
        assert front_door.process_alive(door)
        container.kill()
        container.wait()
        assert _gone(int(door["pid"]), 5), "the front door outlived its container"
        assert "the container has stopped" in (tmp_path / "front_door.log").read_text()
    finally:
        front_door.stop_process(door)


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while processes.live_members(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# -- through the CLI -------------------------------------------------------------------------


def cli(spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TOOLBOX_LOCAL_TOKEN": TOKEN,
        "TOOLBOX_LOCAL_API_KEY": API_KEY,
    }
    return subprocess.run(
        [MCP_DEPLOY, "--spec", str(spec), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )


def project(destination: Path, server: str, requirement: str) -> Path:
    """The example, renamed `server` (its own container name), with an app on `requirement`
    that keeps the SDK's default DNS-rebinding protection unless ALLOWED_HOSTS is set."""
    spec = example_copy(destination, image_base=True)
    text = spec.read_text()
    assert '\nname = "toolbox"\n' in text and "\n[config]\n" in text
    text = text.replace('\nname = "toolbox"\n', f'\nname = "{server}"\n', 1)
    spec.write_text(text.replace("\n[config]\n", '\n[config]\nALLOWED_HOSTS = ""\n', 1))
    (destination / "requirements.txt").write_text(requirement + "\n")
    package = destination / "toolbox"
    (package / "recorder.py").write_text(textwrap.dedent(RECORDER))
    (package / "app.py").write_text(textwrap.dedent(APPS[requirement]))
    return spec


def handle_of(spec: Path) -> dict[str, Any] | None:
    """The running local Cloud Run deployment's handle, from the engine's state file."""
    for path in (spec.parent / ".mcp-deploy").rglob("cloudrun.json"):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "handle" in data:
            return dict(data["handle"])
    return None


def containers(server: str) -> list[str]:
    found = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"name=mcp-deploy-{server}-local-cloudrun"],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.split()


def front_doors(project: Path) -> set[int]:
    """Pids of the running front door processes of `project` (their log is under it)."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
            log = os.readlink(cmdline.parent / "fd" / "2")
        except OSError:
            continue
        if b"targets.cloudrun.front_door" in argv and log.startswith(f"{project}/"):
            found.add(int(cmdline.parent.name))
    return found


@pytest.fixture(params=sorted(APPS), ids=lambda requirement: requirement.replace("==", "-"))
def sdk_project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    requirement: str = request.param
    server = "doorcheck" + requirement.split("==")[1][0]  # doorcheck2, doorcheck1
    spec = project(tmp_path / server, server, requirement)
    try:
        yield spec, server, requirement
    finally:
        cli(spec, "destroy", "--env", "local", "--target", "cloudrun")


def test_the_sdks_default_host_check_passes_and_sees_the_run_app_host_forwarded(
    sdk_project: tuple[Path, str, str],
) -> None:
    spec, server, requirement = sdk_project
    version = requirement.split("==")[1]
    host = presented_host(PROJECT, f"{server}-local", REGION)

    refused = cli(
        spec, "deploy", "--target", "cloudrun", "--config", f"ALLOWED_HOSTS={host}", "--json"
    )
    assert refused.returncode == 4, refused.stdout + refused.stderr  # failed its smoke test
    assert "421" in json.loads(refused.stdout)["error"]  # the app sees a loopback Host
    assert not containers(server) and not front_doors(spec.parent)  # nothing left

    allowed = cli(spec, "deploy", "--target", "cloudrun", "--env", "local", "--json")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    record = json.loads(allowed.stdout)["record"]
    handle = handle_of(spec)
    assert handle is not None and handle["host"] == host
    door = handle["front_door"]
    assert front_door.process_alive(door) and front_doors(spec.parent) == {door["pid"]}

    seen = mcp_session(record["url"], [("seen", {})], token=TOKEN)["results"][0]
    seen = seen.get("result", seen)
    assert seen["host"] == f"127.0.0.1:{handle['upstream_port']}"  # the container's $PORT
    assert seen["x-forwarded-host"] == host and "origin" not in seen
    assert seen["x-forwarded-proto"] == "https" and seen["scheme"] == "https"
    assert seen["x-forwarded-for"] == "127.0.0.1" and "proto=https" in seen["forwarded"]

    # Found again without the state file: the container with its front door.
    from targets.cloudrun import local

    (found,) = local.find(Path(door["log"]).parent, "/mcp")
    assert found.url == record["url"] and found.data["container"] == handle["container"]
    assert found.data["front_door"]["pid"] == door["pid"] and found.data["host"] == host

    store = spec.parent / ".mcp-deploy" / "store"
    blob = store / "blobs" / "sha256" / record["artifact_digest"].removeprefix("sha256:")
    assert sdk_versions(blob, store) == {"mcp": version}

    destroyed = cli(spec, "destroy", "--env", "local", "--target", "cloudrun")
    assert destroyed.returncode == 0, destroyed.stderr
    assert not containers(server)
    assert not processes.live_members(int(door["pid"])) and not front_doors(spec.parent)


def test_a_removed_container_takes_its_front_door_along(tmp_path: Path) -> None:
    spec = project(tmp_path / "doorgone", "doorgone", "mcp==2.3.0")
    try:
        done = cli(spec, "deploy", "--target", "cloudrun")
        assert done.returncode == 0, done.stdout + done.stderr
        handle = handle_of(spec)
        assert handle is not None
        subprocess.run(["docker", "rm", "-f", handle["container"]], check=True)
        assert _gone(int(handle["front_door"]["pid"]), 5)
        status = cli(spec, "status")
        assert "gone" in status.stdout, status.stdout + status.stderr
    finally:
        cli(spec, "destroy", "--env", "local", "--target", "cloudrun")


def test_lambda_local_names_its_function_url_host_too(tmp_path: Path) -> None:
    """Lambda's shim presents requests as loopback ones too: the SDK's default check passes;
    a server allowing only the Function URL host refuses them with 421."""
    from targets.aws_lambda.events import URL_ID

    spec = project(tmp_path / "doorlambda", "doorlambda", "mcp==2.3.0")
    host = f"{URL_ID}.lambda-url.eu-west-1.on.aws"  # the example's targets.lambda.region
    try:
        refused = cli(
            spec, "deploy", "--target", "lambda", "--config", f"ALLOWED_HOSTS={host}", "--json"
        )
        assert refused.returncode == 4, refused.stdout + refused.stderr  # failed its smoke test
        assert "421" in json.loads(refused.stdout)["error"]
        allowed = cli(spec, "deploy", "--target", "lambda", "--json")
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        record = json.loads(allowed.stdout)["record"]
        states = [
            json.loads(p.read_text()) for p in spec.parent.rglob(".mcp-deploy/**/lambda.json")
        ]
        assert [state["handle"]["host"] for state in states if "handle" in state] == [host]
        seen = mcp_session(record["url"], [("seen", {})], token=TOKEN)["results"][0]
        seen = seen.get("result", seen)
        assert seen["host"] == "127.0.0.1:8080" and seen["x-forwarded-host"] == host
        # The local Function URL is plain http on loopback, and says so (the cloud's: https).
        assert seen["x-forwarded-proto"] == "http" and seen["scheme"] == "http"
    finally:
        cli(spec, "destroy", "--env", "local", "--target", "lambda")
