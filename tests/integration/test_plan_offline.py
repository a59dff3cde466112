"""`plan --offline --json` for all three targets: the programs under Pulumi's mock runtime
through the real command line, on the example (Lambda, Cloud Run) and on a small server that
builds for Workers (the example's dependencies cannot: docs/targets.md). No Pulumi CLI, no
credentials, no secret value read, nothing pushed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import mcp_deploy
from tests.support.example import example_copy

pytestmark = pytest.mark.integration

CANARY = "offline-plan-canary-3f9d"
# set, to show they are not read: the plan has [secret] where their values would go
SECRETS = {"STAGING_MCP_TOKEN": f"{CANARY}-token", "STAGING_TOOLBOX_KEY": f"{CANARY}-key"}
NO_CLI = {"MCP_DEPLOY_PULUMI_ROOT": "/nonexistent", "PATH": "/usr/bin:/bin"}

WORKERS_SPEC = """\
[server]
name = "tiny"
entry = "tiny.app:app"

[secrets.MCP_AUTH_TOKEN]

[targets.workers]
account_id = "0123456789abcdef0123456789abcdef"

[environments.staging]
secrets.MCP_AUTH_TOKEN = "env:STAGING_MCP_TOKEN"
"""


def offline_plan(spec: Path, target: str) -> dict[str, Any]:
    done = mcp_deploy(
        spec, {**SECRETS, **NO_CLI}, "plan", "--offline", "--target", target, "--env", "staging",
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert CANARY not in done.stdout + done.stderr
    plan: dict[str, Any] = json.loads(done.stdout)
    assert plan["offline"] is True
    return plan


def resource(plan: dict[str, Any], short: str) -> dict[str, Any]:
    (found,) = [r for r in plan["resources"] if r["type"].rsplit(":", 1)[-1] == short]
    inputs: dict[str, Any] = found["inputs"]
    return inputs


def test_lambda(tmp_path: Path) -> None:
    plan = offline_plan(example_copy(tmp_path / "toolbox"), "lambda")
    digest = plan["request"]["artifact"]["digest"]
    function = resource(plan, "Function")
    assert function["codeSha256"] == base64.b64encode(bytes.fromhex(digest[7:])).decode()
    assert function["runtime"] == "python3.11" and function["memorySize"] == 1024
    versions = [r for r in plan["resources"] if r["type"].endswith("SecretVersion")]
    assert [v["inputs"]["secretString"] for v in versions] == ["[secret]", "[secret]"]
    assert plan["outputs"]["url"].endswith(".on.aws/mcp")
    assert plan["warnings"] == []


def test_cloudrun(tmp_path: Path) -> None:
    spec = example_copy(tmp_path / "toolbox", image_base=True)
    plan = offline_plan(spec, "cloudrun")  # a push to that registry would fail here
    digest = plan["request"]["artifact"]["digest"]
    service = resource(plan, "Service")
    (container,) = service["template"]["containers"]
    assert container["image"] == f"europe-west1-docker.pkg.dev/acme-mcp/mcp/toolbox@{digest}"
    refs = [e["valueSource"]["secretKeyRef"] for e in container["envs"] if "valueSource" in e]
    assert sorted(ref["version"] for ref in refs) == ["1", "1"]  # pinned, never latest
    assert plan["outputs"]["url"].endswith(".run.app/mcp")


def test_workers(tmp_path: Path) -> None:
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "__init__.py").write_text("")
    (tmp_path / "tiny" / "app.py").write_text("async def app(scope, receive, send):\n    pass\n")
    spec = tmp_path / "mcp-deploy.toml"
    spec.write_text(WORKERS_SPEC)
    plan = offline_plan(spec, "workers")
    version = resource(plan, "WorkerVersion")
    assert version["mainModule"] == "entry.py"
    assert version["bindings"] == "[secret]"  # one secret binding makes the list secret
    assert {m["name"] for m in version["modules"]} >= {"entry.py", "tiny/app.py"}
    assert plan["outputs"]["url"].endswith(".workers.dev/mcp")
