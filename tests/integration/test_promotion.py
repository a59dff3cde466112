"""Environments end to end on this machine: deploy to one local-kind environment, promote the
very artifact to another (each runs with its own config and secret), a broken release rolled
back by its gate, `rollback --to` an older record, `status` and `history` after each step, the
refusals, and two promotions racing on one environment.

Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_example_servers import mcp_session
from tests.support.cli import MCP_DEPLOY, mcp_deploy
from tests.support.example import QA_ENVIRONMENT, example_copy

pytestmark = pytest.mark.integration

SECRETS = {
    "TOOLBOX_LOCAL_TOKEN": "promo-local-token-canary-1a2b",
    "TOOLBOX_LOCAL_API_KEY": "promo-local-key-canary-3c4d",
    "QA_TOKEN": "promo-qa-token-canary-5e6f",
    "QA_API_KEY": "promo-qa-key-canary-7a8b",
}


def cli(spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return mcp_deploy(spec, SECRETS, *args)


def ok_json(spec: Path, *args: str) -> dict[str, Any]:
    done = cli(spec, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def greet(url: str, token: str) -> tuple[str, Any]:
    seen = mcp_session(url, [("greet", {"name": "p"}), ("secret_fingerprint", {})], token)
    return seen["results"][0]["result"], seen["results"][1]


def status(spec: Path, environment: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ok_json(spec, "status", "--env", environment)["deployments"]
    return found


@pytest.fixture
def spec(tmp_path: Path) -> Any:
    spec = example_copy(tmp_path / "toolbox", image_base=True)
    spec.write_text(spec.read_text() + QA_ENVIRONMENT)
    yield spec
    for environment in ("local", "qa"):
        cli(spec, "destroy", "--env", environment)


@pytest.mark.parametrize("target", ["lambda", "cloudrun"])
def test_promote_runs_the_same_artifact_with_the_other_config_and_secret(
    spec: Path, target: str
) -> None:
    first = ok_json(spec, "--target", target)["record"]
    promoted = ok_json(spec, "promote", "--from", "local", "--to", "qa", "--target", target)
    (record,) = promoted["records"]
    assert record["artifact_digest"] == first["artifact_digest"]  # never rebuilt
    assert (record["promoted_from"], record["action"], record["status"]) == (
        "local", "promote", "verified",
    )  # fmt: skip
    assert greet(first["url"], SECRETS["TOOLBOX_LOCAL_TOKEN"])[0] == "Hello, p!"
    text, secret = greet(record["url"], SECRETS["QA_TOKEN"])
    assert text == "Hello from qa, p!"
    secret = secret.get("result", secret)
    assert secret == {"configured": True, "sha256_12": fingerprint(SECRETS["QA_API_KEY"])}


def test_gate_rollback_history_status_and_refusals(spec: Path) -> None:
    first = ok_json(spec, "--target", "lambda")["record"]
    ok_json(spec, "promote", "--from", "local", "--to", "qa")
    # a config change deployed to qa directly: a second passing record there
    spec.write_text(spec.read_text().replace('"Hello from qa"', '"Hi from qa"'))
    second = ok_json(spec, "--target", "lambda", "--env", "qa")["record"]
    assert greet(second["url"], SECRETS["QA_TOKEN"])[0] == "Hi from qa, p!"
    (live,) = status(spec, "qa")
    assert live["drift"] == {"spec": False, "config": False}
    assert live["last_smoke"] == "verified" and live["record"]["id"] == second["id"]

    # a broken release: the server's greeting is wrong, its gate fails, qa is rolled back
    app = spec.parent / "toolbox" / "app.py"
    app.write_text(
        app.read_text().replace('return f"{os.environ', 'return "broken" or f"{os.environ')
    )
    broken = cli(spec, "--target", "lambda", "--env", "qa")
    assert broken.returncode == 3, broken.stdout + broken.stderr
    assert "rolled back" in broken.stderr and "passed its smoke test" in broken.stderr
    assert greet(second["url"], SECRETS["QA_TOKEN"])[0] == "Hi from qa, p!"  # answers again
    (live,) = status(spec, "qa")
    assert live["artifact_digest"] == first["artifact_digest"]
    assert live["record"]["action"] == "rollback"

    # rollback --to the promoted record: its own config comes back
    history = ok_json(spec, "history", "--env", "qa", "--target", "lambda")["records"]
    actions = [(r["action"], r["status"]) for r in reversed(history)]
    assert actions == [
        ("promote", "verified"),
        ("deploy", "verified"),
        ("deploy", "failed"),
        ("rollback", "verified"),
    ]
    promoted_id = history[-1]["id"]
    back = ok_json(spec, "rollback", "--env", "qa", "--target", "lambda", "--to", promoted_id[:20])
    assert back["record"]["request_hash"] == history[-1]["request_hash"]
    assert greet(back["record"]["url"], SECRETS["QA_TOKEN"])[0] == "Hello from qa, p!"
    (live,) = status(spec, "qa")
    # what runs is configured "Hello from qa"; the spec says "Hi from qa" now
    assert live["drift"] == {"spec": False, "config": True}
    spec.write_text(spec.read_text() + "\n# edited after the rollback\n")
    (live,) = status(spec, "qa")
    assert live["drift"] == {"spec": True, "config": True}

    # refusals: qa takes artifacts from local only; an environment with no passing record
    refused = cli(spec, "promote", "--from", "staging", "--to", "qa")
    assert refused.returncode == 2 and "from 'local' only" in refused.stderr
    nothing = cli(spec, "promote", "--from", "qa", "--to", "staging", "--target", "cloudrun")
    assert nothing.returncode == 2 and "no deployment that passed" in nothing.stderr


def test_two_promotions_racing_on_one_environment_leave_consistent_records(spec: Path) -> None:
    ok_json(spec, "--target", "lambda")
    env = {**os.environ, **SECRETS, "MCP_DEPLOY_SPEC": str(spec)}
    args = [MCP_DEPLOY, "promote", "--from", "local", "--to", "qa", "--target", "lambda"]
    racers = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for racer in racers:
        out, err = racer.communicate(timeout=600)
        assert racer.returncode == 0, out + err
    history = ok_json(spec, "history", "--env", "qa")["records"]
    assert [(r["action"], r["status"]) for r in history] == [("promote", "verified")] * 2
    assert history[0]["replaces"] == history[1]["id"]  # the second saw the first
    (live,) = [d for d in status(spec, "qa") if d["running"]]
    assert live["record"]["id"] == history[0]["id"]
