"""`deploy --env local` for real, for both targets, through the installed `mcp-deploy` command:
the example runs in the background (awslambdaric behind the Function URL front door; a Docker
container), passes its smoke test, refuses a wrong token, proves it received its secret, is
recorded, shows in `status`, and `destroy` leaves nothing behind. A server whose entry fails
to import fails the deploy with a clear error. Canary secrets never reach a file or a log.

Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from orchestrator import processes
from tests.integration.test_example_servers import mcp_session
from tests.support.cli import mcp_deploy
from tests.support.example import example_copy
from tests.support.mcp_wire import INITIALIZE

pytestmark = pytest.mark.integration

MCP_DEPLOY = str(Path(sys.executable).with_name("mcp-deploy"))
TOKEN = "local-token-canary-2f9d41"
API_KEY = "local-apikey-canary-8b03e7"
DOTENV = "local-dotenv-canary-55aa10"
TARGETS = ["lambda", "cloudrun"]


def local_project(destination: Path) -> Path:
    """The example with the test base image (no public registry is reachable here)."""
    spec = example_copy(destination, image_base=True)
    (destination / ".env").write_text(f"TOOLBOX_API_KEY={DOTENV}\n")
    return spec


def cli(spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return mcp_deploy(spec, {"TOOLBOX_LOCAL_TOKEN": TOKEN, "TOOLBOX_LOCAL_API_KEY": API_KEY}, *args)


def local_state(spec: Path, target: str, environment: str = "local") -> dict[str, Any] | None:
    path = spec.parent / ".mcp-deploy" / "state" / environment / f"{target}.json"
    return json.loads(path.read_text()) if path.exists() else None


def leftovers(target: str, handle: dict[str, Any]) -> bool:
    """True when anything of the deployment behind `handle` still exists."""
    if target == "lambda":  # any live process left in the supervisor's process group
        return bool(processes.live_members(int(handle["pid"])))
    found = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"id={handle['container']}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return bool(found.stdout.strip())


def children_of(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(parent):
            found.append(int(stat.parent.name))
    return found


def alive_pid(pid: int) -> bool:
    started = processes.start_time(pid)
    return started is not None and processes.alive(pid, started)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return local_project(tmp_path_factory.mktemp("local") / "toolbox")


@pytest.fixture(scope="module", params=TARGETS)
def deployed(request: pytest.FixtureRequest, spec: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    target: str = request.param
    done = cli(spec, "deploy", "--target", target, "--env", "local", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    record: dict[str, Any] = json.loads(done.stdout)["record"]
    try:
        yield target, record
    finally:
        cli(spec, "destroy", "--env", "local", "--target", target)


def test_deploy_smoke_tests_and_records(spec: Path, deployed: tuple[str, dict[str, Any]]) -> None:
    target, record = deployed
    assert record["target"] == target and record["environment"] == "local"
    assert record["url"].startswith("http://127.0.0.1:") and record["url"].endswith("/mcp")
    assert record["artifact_digest"].startswith("sha256:")
    assert record["config_hash"].startswith("sha256:")
    smoke = record["smoke"]
    assert smoke["ok"] is True and 0 < smoke["first_response_ms"] <= smoke["cold_start_ms"]
    stored = list((spec.parent / ".mcp-deploy" / "records" / "local" / target).glob("*.json"))
    assert [json.loads(path.read_text()) for path in stored][-1] == record


def test_wrong_token_refused_right_token_accepted(deployed: tuple[str, dict[str, Any]]) -> None:
    _target, record = deployed
    headers = {"accept": "application/json, text/event-stream"}
    for token in (None, "wrong", TOKEN + "x"):
        sent = dict(headers, authorization=f"Bearer {token}") if token else headers
        refused = httpx2.post(record["url"], json=INITIALIZE, headers=sent, timeout=30)
        assert refused.status_code == 401, refused.text
    accepted = httpx2.post(
        record["url"], json=INITIALIZE, headers=dict(headers, authorization=f"Bearer {TOKEN}")
    )
    assert accepted.status_code == 200
    assert accepted.json()["result"]["serverInfo"]["name"] == "toolbox"


def test_secret_and_config_reach_the_server(deployed: tuple[str, dict[str, Any]]) -> None:
    _target, record = deployed
    seen = mcp_session(
        record["url"], [("secret_fingerprint", {}), ("greet", {"name": "x"})], token=TOKEN
    )
    expected = hashlib.sha256(API_KEY.encode()).hexdigest()[:12]
    assert seen["results"][0] == {"configured": True, "sha256_12": expected}
    assert seen["results"][1] == {"result": "Hello, x!"}


def test_smoke_by_target_and_status(spec: Path, deployed: tuple[str, dict[str, Any]]) -> None:
    target, record = deployed
    smoke = cli(spec, "smoke", "--target", target, "--env", "local", "--json")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert json.loads(smoke.stdout)["ok"] is True
    status = cli(spec, "status", "--json")
    entries = {
        entry["target"]: entry
        for entry in json.loads(status.stdout)["deployments"]
        if entry["environment"] == "local"
    }
    assert entries[target]["running"] is True and entries[target]["url"] == record["url"]


def test_logs_of_a_local_deployment(spec: Path, deployed: tuple[str, dict[str, Any]]) -> None:
    target, _record = deployed
    done = cli(spec, "logs", "--target", target, "-n", "200")
    assert done.returncode == 0, done.stderr
    assert (
        "REPORT RequestId:" if target == "lambda" else '"POST /mcp HTTP/1.1" 200'
    ) in done.stdout
    for canary in (TOKEN, API_KEY, DOTENV):
        assert canary not in done.stdout


def test_no_secret_value_on_disk_or_in_logs(
    spec: Path, deployed: tuple[str, dict[str, Any]]
) -> None:
    target, _record = deployed
    for path in (spec.parent / ".mcp-deploy").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for canary in (TOKEN, API_KEY, DOTENV):
                assert canary.encode() not in data, (canary, path)
    handle = local_state(spec, target)
    assert handle is not None
    if target == "cloudrun":
        inspected = subprocess.run(
            ["docker", "inspect", handle["handle"]["container"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        logs = subprocess.run(
            ["docker", "logs", handle["handle"]["container"]], capture_output=True, text=True
        )
        for canary in (TOKEN, API_KEY, DOTENV):
            assert canary not in inspected and canary not in logs.stdout + logs.stderr
        assert '"ReadonlyRootfs": true' in inspected and '"NetworkMode": "host"' in inspected
        for variable in ("PORT=", "K_SERVICE=toolbox-local", "K_REVISION=", "K_CONFIGURATION="):
            assert variable in inspected
    else:
        argv = Path(f"/proc/{handle['handle']['pid']}/cmdline").read_bytes()
        assert TOKEN.encode() not in argv and API_KEY.encode() not in argv


def test_destroy_leaves_nothing(spec: Path, deployed: tuple[str, dict[str, Any]]) -> None:
    target, _record = deployed
    state = local_state(spec, target)
    assert state is not None
    done = cli(spec, "destroy", "--env", "local", "--target", target)
    assert done.returncode == 0 and f"stopped {target}" in done.stdout
    assert not leftovers(target, state["handle"])
    assert local_state(spec, target) is None
    status = json.loads(cli(spec, "status", "--json").stdout)
    assert target not in [entry["target"] for entry in status["deployments"]]


@pytest.mark.parametrize("target", TARGETS)
def test_a_deployment_that_died_is_forgotten(spec: Path, target: str) -> None:
    done = cli(spec, "deploy", "--target", target, "--json")
    assert done.returncode == 0, done.stderr
    state = local_state(spec, target)
    assert state is not None
    if target == "lambda":
        os.killpg(state["handle"]["pid"], signal.SIGKILL)
    else:
        subprocess.run(["docker", "rm", "-f", state["handle"]["container"]], check=True)
    status = cli(spec, "status")
    assert "gone" in status.stdout, status.stdout
    assert local_state(spec, target) is None
    assert not leftovers(target, state["handle"])


@pytest.mark.parametrize("target", TARGETS)
def test_an_entry_that_does_not_import_fails_the_deploy_clearly(
    tmp_path: Path, target: str
) -> None:
    spec = local_project(tmp_path / "toolbox")
    (spec.parent / "toolbox" / "broken.py").write_text(
        "import not_a_real_dependency  # noqa\napp = None\n"
    )
    spec.write_text(spec.read_text().replace('"toolbox.app:app"', '"toolbox.broken:app"'))
    done = cli(spec, "deploy", "--target", target)
    # Lambda starts and fails its smoke test (exit 4); the container never starts (exit 1)
    assert done.returncode == (4 if target == "lambda" else 1), done.stdout + done.stderr
    summary = done.stderr[done.stderr.index("error: ") :].split("hint:")[0]
    assert "No module named 'not_a_real_dependency'" in summary, done.stderr
    assert local_state(spec, target) is None
    if target == "cloudrun":
        names = subprocess.run(
            ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True
        ).stdout
        assert "mcp-deploy-toolbox-local-cloudrun" not in names


@pytest.mark.parametrize("target", TARGETS)
def test_run_serves_in_the_foreground_and_stops_cleanly(spec: Path, target: str) -> None:
    env = {**os.environ, "TOOLBOX_LOCAL_TOKEN": TOKEN, "TOOLBOX_LOCAL_API_KEY": API_KEY}
    process = subprocess.Popen(
        [MCP_DEPLOY, "--spec", str(spec), "run", "--target", target],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    assert process.stdout is not None and process.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        line = process.stdout.readline()
        assert line.startswith("serving toolbox"), line
        url = line.rsplit(" at ", 1)[1].strip()
        seen = mcp_session(url, [("secret_fingerprint", {})], token=TOKEN)
        expected = hashlib.sha256(API_KEY.encode()).hexdigest()[:12]
        assert seen["results"][0] == {"configured": True, "sha256_12": expected}
        deadline = time.monotonic() + 60
        while not any(line.startswith("smoke ") for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        children = children_of(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(10)
    err = "".join(lines)
    assert process.returncode == 0, err
    assert "smoke ok" in err and "stopped" in err, err
    assert TOKEN not in err and API_KEY not in err
    names = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True
    ).stdout
    running = [n for n in names.split() if n.startswith("mcp-deploy-toolbox-local-cloudrun")]
    assert not [n for n in running if n.endswith("-run")], running
    assert target == "cloudrun" or children, "the Lambda runtime should be a child of run"
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists() and alive_pid(pid)]


@pytest.mark.parametrize("target", TARGETS)
def test_redeploy_replaces_the_running_one_and_keeps_its_url(spec: Path, target: str) -> None:
    first = cli(spec, "deploy", "--target", target, "--json")
    assert first.returncode == 0, first.stderr
    before = local_state(spec, target)
    second = cli(spec, "deploy", "--target", target, "--json")
    assert second.returncode == 0, second.stderr
    after = local_state(spec, target)
    try:
        assert before is not None and after is not None
        assert json.loads(second.stdout)["record"]["url"] == before["url"] == after["url"]
        assert after["handle"] != before["handle"]
        assert not leftovers(target, before["handle"])
    finally:
        cli(spec, "destroy", "--env", "local", "--target", target)


def test_state_survives_a_crash_of_the_cli(spec: Path) -> None:
    env = {**os.environ, "TOOLBOX_LOCAL_TOKEN": TOKEN, "TOOLBOX_LOCAL_API_KEY": API_KEY}
    deploying = subprocess.Popen(
        [MCP_DEPLOY, "--spec", str(spec), "deploy", "--target", "lambda"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 120
    while local_state(spec, "lambda") is None:  # started, smoke test not yet done
        assert deploying.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    deploying.kill()
    deploying.wait()
    state = local_state(spec, "lambda")
    assert state is not None
    status = json.loads(cli(spec, "status", "--json").stdout)
    running = [e["running"] for e in status["deployments"] if e["target"] == "lambda"]
    assert running == [True]
    assert cli(spec, "destroy", "--env", "local").returncode == 0
    assert not leftovers("lambda", state["handle"]) and local_state(spec, "lambda") is None
