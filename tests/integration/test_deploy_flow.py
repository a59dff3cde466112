"""The one deploy flow, for real, through the installed `mcp-deploy`: the shorthand, a second
local-kind environment beside `local` on both targets, racing deploys, interrupts at each
phase, rollback after a failed smoke test, and `plan`.

Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator import processes
from tests.integration.test_example_servers import mcp_session
from tests.support.cli import mcp_deploy
from tests.support.example import example_copy

pytestmark = pytest.mark.integration

MCP_DEPLOY = str(Path(sys.executable).with_name("mcp-deploy"))
SECRETS = {
    "TOOLBOX_LOCAL_TOKEN": "flow-local-token-canary-71c2",
    "TOOLBOX_LOCAL_API_KEY": "flow-local-apikey-canary-93ad",
    "CI_TOKEN": "flow-ci-token-canary-0be5",
    "CI_API_KEY": "flow-ci-apikey-canary-44f1",
}
CI_ENVIRONMENT = """
[environments.ci]
kind = "local"
description = "A second environment on this machine, beside local"
config.GREETING = "Hello from ci"
secrets.MCP_AUTH_TOKEN = "env:CI_TOKEN"
secrets.TOOLBOX_API_KEY = "env:CI_API_KEY"
"""


def project(destination: Path) -> Path:
    spec = example_copy(destination, image_base=True)
    spec.write_text(spec.read_text() + CI_ENVIRONMENT)
    return spec


def cli(spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return mcp_deploy(spec, SECRETS, *args)


def start(spec: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **SECRETS, "MCP_DEPLOY_SPEC": str(spec)}
    return subprocess.Popen(
        [MCP_DEPLOY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def state_file(spec: Path, environment: str, target: str) -> Path:
    return spec.parent / ".mcp-deploy" / "state" / environment / f"{target}.json"


def records(spec: Path, environment: str, target: str) -> list[dict[str, Any]]:
    folder = spec.parent / ".mcp-deploy" / "records" / environment / target
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def deployments(spec: Path) -> list[dict[str, Any]]:
    done = cli(spec, "status", "--json")
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)["deployments"]
    return found


def supervisors(spec: Path) -> list[int]:
    """Live Lambda-local supervisors of this project (found by their log path argument)."""
    marker = str(spec.parent / ".mcp-deploy").encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes()
        except OSError:
            continue
        if b"targets.aws_lambda.supervisor" in argv and marker in argv:
            pid = int(cmdline.parent.name)
            started = processes.start_time(pid)
            if started is not None and processes.alive(pid, started):
                found.append(pid)
    return found


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project(tmp_path_factory.mktemp("flow") / "toolbox")


def test_two_local_environments_side_by_side_on_both_targets(spec: Path) -> None:
    urls: dict[tuple[str, str], str] = {}
    try:
        for target in ("lambda", "cloudrun"):
            for environment in ("local", "ci"):
                args = ["--target", target, "--json"]  # the shorthand: no "deploy"
                if environment != "local":
                    args += ["--env", environment]
                done = cli(spec, *args)
                assert done.returncode == 0, done.stdout + done.stderr
                record = json.loads(done.stdout)["record"]
                assert record["environment"] == environment and record["status"] == "verified"
                urls[(environment, target)] = record["url"]
        assert len(set(urls.values())) == 4
        for (environment, _target), url in urls.items():
            token = SECRETS["CI_TOKEN" if environment == "ci" else "TOOLBOX_LOCAL_TOKEN"]
            key = SECRETS["CI_API_KEY" if environment == "ci" else "TOOLBOX_LOCAL_API_KEY"]
            seen = mcp_session(url, [("greet", {"name": "x"}), ("secret_fingerprint", {})], token)
            greeting = "Hello from ci" if environment == "ci" else "Hello"
            assert seen["results"][0] == {"result": f"{greeting}, x!"}
            assert seen["results"][1] == {"configured": True, "sha256_12": fingerprint(key)}
        running = {(d["environment"], d["target"]) for d in deployments(spec) if d["running"]}
        assert running == set(urls)

        done = cli(spec, "destroy", "--env", "ci", "--json")
        assert done.returncode == 0, done.stderr
        assert {d["target"] for d in json.loads(done.stdout)["stopped"]} == {"lambda", "cloudrun"}
        running = {(d["environment"], d["target"]) for d in deployments(spec) if d["running"]}
        assert running == {("local", "lambda"), ("local", "cloudrun")}
        for target in ("lambda", "cloudrun"):
            url = urls[("local", target)]
            seen = mcp_session(url, [("greet", {"name": "y"})], SECRETS["TOOLBOX_LOCAL_TOKEN"])
            assert seen["results"][0] == {"result": "Hello, y!"}
    finally:
        cli(spec, "destroy", "--env", "ci")
        cli(spec, "destroy", "--env", "local")


def test_plan_shows_the_request_with_references_and_no_values(spec: Path) -> None:
    done = cli(spec, "plan", "--target", "lambda", "--env", "ci", "--json")
    assert done.returncode == 0, done.stderr
    for value in SECRETS.values():
        assert value not in done.stdout + done.stderr
    plan = json.loads(done.stdout)
    request = plan["request"]
    assert request["artifact"]["digest"].startswith("sha256:")
    assert request["secrets"] == {
        "MCP_AUTH_TOKEN": "env:CI_TOKEN",
        "TOOLBOX_API_KEY": "env:CI_API_KEY",
    }
    assert request["config"]["GREETING"] == "Hello from ci" and request["engine"] == "local"
    assert plan["request_hash"].startswith("sha256:")
    assert [change["action"] for change in plan["changes"]] == ["create"]
    assert not state_file(spec, "ci", "lambda").exists()
    again = json.loads(cli(spec, "plan", "--target", "lambda", "--env", "ci", "--json").stdout)
    assert again["request_hash"] == plan["request_hash"]


def containers(spec: Path) -> list[str]:
    """Ids of this project's Cloud Run-local containers (found by their state-dir label)."""
    label = (
        f"dev.mcp-deploy.state-dir={spec.parent / '.mcp-deploy' / 'state' / 'local' / 'cloudrun'}"
    )
    found = subprocess.run(
        ["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={label}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.split()


@pytest.mark.parametrize("target", ["lambda", "cloudrun"])
def test_racing_deploys_leave_one_deployment_and_orphan_nothing(spec: Path, target: str) -> None:
    racing = [start(spec, "deploy", "--target", target) for _ in range(2)]
    try:
        outputs = [process.communicate(timeout=300) for process in racing]
        assert [process.returncode for process in racing] == [0, 0], outputs
        assert any("waiting for another mcp-deploy" in err for _out, err in outputs)
        state = json.loads(state_file(spec, "local", target).read_text())
        if target == "lambda":
            assert supervisors(spec) == [state["handle"]["pid"]]
        else:
            assert containers(spec) == [state["handle"]["container"]]
        history = records(spec, "local", target)[-2:]
        assert [r["status"] for r in history] == ["verified", "verified"]
        assert history[1]["replaces"] == history[0]["id"]
        assert history[1]["url"] == state["url"]
    finally:
        cli(spec, "destroy", "--env", "local")
    assert supervisors(spec) == [] and containers(spec) == []


@pytest.mark.parametrize(
    ("phase", "signum"),
    [
        ("build", signal.SIGINT),
        ("build", signal.SIGKILL),
        ("smoke", signal.SIGINT),
        ("smoke", signal.SIGTERM),
        ("smoke", signal.SIGKILL),
    ],
)
def test_an_interrupted_deploy_leaves_the_truth(
    tmp_path: Path, phase: str, signum: signal.Signals
) -> None:
    spec = project(tmp_path / "toolbox")
    state = state_file(spec, "local", "lambda")
    deploying = start(spec, "deploy", "--target", "lambda")
    try:
        deadline = time.monotonic() + 120
        if phase == "build":
            time.sleep(0.5)  # resolving and building: nothing started yet
            assert not state.exists()
        else:
            while not state.exists():  # started and written down; the smoke test follows
                assert deploying.poll() is None and time.monotonic() < deadline
                time.sleep(0.01)
        deploying.send_signal(signum)
        deploying.communicate(timeout=60)
        if signum != signal.SIGKILL:
            assert deploying.returncode == 130
        live = [d for d in deployments(spec) if d["running"]]
        if phase == "build":
            assert live == [] and records(spec, "local", "lambda") == []
            assert supervisors(spec) == []
        else:  # the new deployment runs, and is recorded
            assert [d["target"] for d in live] == ["lambda"]
            (record,) = records(spec, "local", "lambda")
            if signum == signal.SIGKILL:  # killed before or after it could say it runs
                assert record["status"] in ("applying", "applied")
                assert record["url"] in ("", live[0]["url"])
            else:
                assert record["status"] == "unverified" and record["url"] == live[0]["url"]
            assert supervisors(spec) == [json.loads(state.read_text())["handle"]["pid"]]
        rerun = cli(spec, "deploy", "--target", "lambda", "--json")
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert len(supervisors(spec)) == 1
    finally:
        if deploying.poll() is None:
            deploying.kill()
            deploying.wait()
        cli(spec, "destroy", "--env", "local")
    assert supervisors(spec) == []


def test_a_failed_smoke_test_rolls_back_to_the_previous_deployment(tmp_path: Path) -> None:
    spec = project(tmp_path / "toolbox")
    try:
        good = cli(spec, "deploy", "--target", "lambda", "--json")
        assert good.returncode == 0, good.stderr
        previous = json.loads(good.stdout)["record"]
        spec.write_text(spec.read_text().replace('expect = "smoke"', 'expect = "never there"'))
        bad = cli(spec, "deploy", "--target", "lambda")
        assert bad.returncode == 3, bad.stdout + bad.stderr  # failed its gate, rolled back
        assert "failed its smoke test" in bad.stderr and "rolled back" in bad.stderr
        assert "passed its smoke test" in bad.stderr  # the restored one was checked again
        history = records(spec, "local", "lambda")
        assert [(r["status"], r["action"]) for r in history] == [
            ("verified", "deploy"),
            ("failed", "deploy"),
            ("verified", "rollback"),
        ]
        assert history[1]["replaces"] == previous["id"]
        assert history[2]["replaces"] == history[1]["id"]
        assert history[2]["request_hash"] == previous["request_hash"]
        (live,) = [d for d in deployments(spec) if d["running"]]
        assert live["url"] == previous["url"]
        assert live["artifact_digest"] == previous["artifact_digest"]
        assert live["record"]["id"] == history[2]["id"]
        seen = mcp_session(live["url"], [("greet", {"name": "z"})], SECRETS["TOOLBOX_LOCAL_TOKEN"])
        assert seen["results"][0] == {"result": "Hello, z!"}
    finally:
        cli(spec, "destroy", "--env", "local")


STATEFUL = """\
from mcp.server.transport_security import TransportSecuritySettings

from toolbox.app import mcp

# Sessions kept in memory (no stateless_http): fine on one instance, lost across several.
app = mcp.streamable_http_app(
    streamable_http_path="/mcp",
    json_response=True,
    transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
)
"""


@pytest.mark.parametrize(
    ("target", "max_instances", "warned"),
    [("lambda", None, True), ("cloudrun", 10, True), ("cloudrun", 1, False)],
)
def test_a_stateful_server_is_warned_about_where_requests_spread(
    tmp_path: Path, target: str, max_instances: int | None, warned: bool
) -> None:
    spec = project(tmp_path / "toolbox")
    (spec.parent / "toolbox" / "stateful.py").write_text(STATEFUL)
    text = spec.read_text().replace('"toolbox.app:app"', '"toolbox.stateful:app"')
    if max_instances is not None:
        text = text.replace(
            "[targets.cloudrun]\n", f"[targets.cloudrun]\nmax_instances = {max_instances}\n"
        )
    spec.write_text(text)
    try:
        done = cli(spec, "--target", target, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads(done.stdout)
        assert result["record"]["smoke"]["session_id"] is True
        warnings = result["warnings"]
        assert bool(warnings) is warned, warnings
        if warned:
            assert "Mcp-Session-Id" in warnings[0] and "stateless_http=True" in warnings[0]
    finally:
        cli(spec, "destroy", "--env", "local")


@pytest.mark.parametrize("damage", ["lost", "corrupt"])
def test_a_deployment_whose_state_is_lost_is_still_seen_and_stopped(
    tmp_path: Path, damage: str
) -> None:
    spec = project(tmp_path / "toolbox")
    try:
        done = cli(spec, "--target", "lambda", "--json")
        assert done.returncode == 0, done.stderr
        url = json.loads(done.stdout)["record"]["url"]
        state = state_file(spec, "local", "lambda")
        if damage == "lost":
            state.unlink()
        else:
            state.write_text('{"server": "toolbox", "truncated')
        (found,) = deployments(spec)
        assert found["running"] is True and found["url"] == url, found
        assert "without its state file" in found["note"]
        again = cli(spec, "--target", "lambda", "--json")  # replaces it: nothing orphaned
        assert again.returncode == 0, again.stderr
        assert len(supervisors(spec)) == 1
        state.unlink()
        stopped = cli(spec, "destroy", "--env", "local", "--json")
        assert stopped.returncode == 0, stopped.stderr
        assert [d["target"] for d in json.loads(stopped.stdout)["stopped"]] == ["lambda"]
        assert supervisors(spec) == [] and deployments(spec) == []
    finally:
        cli(spec, "destroy", "--env", "local")
