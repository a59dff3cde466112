"""A deploy to a cloud environment through the whole flow, for real but for the cloud:
`mcp-deploy --target lambda --env staging` runs the Pulumi engine against the recording
stand-in CLI, whose stack outputs point at the example really running in the Lambda emulation
on this machine. So the smoke test speaks MCP to a real server with staging's own token, the
record and the stack tag are written, a failed smoke test rolls back through the engine, and
`status` reads the stack; no secret value reaches the CLI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support import pulumi_standin
from tests.support.cli import mcp_deploy
from tests.support.example import example_copy
from tests.support.net import free_port

pytestmark = pytest.mark.integration

TOKEN = "cloud-flow-token-canary-5e1a"
KEY = "cloud-flow-key-canary-c07d"


def _secrets(standin: Path) -> dict[str, str]:
    return {
        "TOOLBOX_LOCAL_TOKEN": TOKEN,
        "TOOLBOX_LOCAL_API_KEY": KEY,
        "STAGING_MCP_TOKEN": TOKEN,  # the local server checks the same token
        "STAGING_TOOLBOX_KEY": KEY,
        "MCP_DEPLOY_PULUMI_ROOT": str(standin),
        "PULUMI_CONFIG_PASSPHRASE": "state-passphrase",
    }


def _outputs(url: str, digest: str) -> dict[str, Any]:
    deployment = {"artifact_digest": digest, "request_hash": "", "deployed_at": "now"}
    return {"url": url, "mcp_deploy": json.dumps(deployment)}


def test_a_cloud_deploy_is_smoke_tested_recorded_and_rolled_back(tmp_path: Path) -> None:
    spec = example_copy(tmp_path / "toolbox")
    standin = tmp_path / "pulumi"
    pulumi_standin.install(standin)
    secrets = _secrets(standin)

    local = mcp_deploy(spec, secrets, "--target", "lambda", "--json")
    assert local.returncode == 0, local.stderr
    served = json.loads(local.stdout)["record"]
    try:
        (standin / "scenario.json").write_text(
            json.dumps({"outputs": _outputs(served["url"], served["artifact_digest"])})
        )
        done = mcp_deploy(spec, secrets, "--target", "lambda", "--env", "staging", "--json")
        assert done.returncode == 0, done.stderr
        record = json.loads(done.stdout)["record"]
        assert (record["engine"], record["status"]) == ("pulumi", "verified")
        assert record["url"] == served["url"]
        assert record["smoke"]["ok"] is True
        assert record["artifact_digest"] == served["artifact_digest"]  # the same artifact

        calls = pulumi_standin.calls(standin)
        argv = [call["argv"] for call in calls]
        assert any("up" in a for a in argv)
        assert any(a[-4:] == ["mcp-deploy:status", "verified", "--stack", "staging.lambda"]
                   for a in argv)  # fmt: skip
        text = json.dumps(calls)
        assert TOKEN not in text and KEY not in text  # argv, environment, stdin of every call
        for path in (spec.parent / ".mcp-deploy").rglob("*"):
            if path.is_file() and path.suffix in (".json", ".yaml", ".log", ""):
                content = path.read_bytes()
                assert TOKEN.encode() not in content and KEY.encode() not in content, path

        status = mcp_deploy(spec, secrets, "status", "--env", "staging", "--json")
        assert status.returncode == 0, status.stderr
        (entry,) = json.loads(status.stdout)["deployments"]
        assert entry["url"] == served["url"]
        assert "verified" in json.dumps(entry)

        # A new deploy whose endpoint does not answer fails its smoke test: the engine applies
        # the previous record's request again (the stand-in's up), and the command exits 1.
        dead = f"http://127.0.0.1:{free_port()}/mcp"
        good = _outputs(served["url"], served["artifact_digest"])
        (standin / "scenario.json").write_text(
            json.dumps({"up_outputs": [_outputs(dead, served["artifact_digest"]), good]})
        )
        ups_before = sum("up" in a for a in argv)
        failed = mcp_deploy(
            spec, secrets, "--target", "lambda", "--env", "staging", "--config", "GREETING=x"
        )
        assert failed.returncode == 3, failed.stderr  # failed its gate, rolled back
        assert "failed its smoke test" in failed.stderr
        assert "rolled back" in failed.stderr and "passed its smoke test" in failed.stderr
        argv = [call["argv"] for call in pulumi_standin.calls(standin)]
        assert sum("up" in a for a in argv) == ups_before + 2  # the new one, then the old one

        # A runner without this machine's records (a fresh CI job): the previous deployment's
        # record is read from the stack, and a failed release is rolled back all the same.
        kept = _outputs(served["url"], served["artifact_digest"])
        kept["mcp_deploy"] = json.dumps({**json.loads(kept["mcp_deploy"]), "record": record})
        (standin / "scenario.json").write_text(json.dumps({"outputs": kept}))
        assert mcp_deploy(spec, secrets, "--target", "lambda", "--env", "staging").returncode == 0
        shutil.rmtree(spec.parent / ".mcp-deploy" / "records")
        (standin / "scenario.json").write_text(
            json.dumps({"up_outputs": [_outputs(dead, served["artifact_digest"]), kept]})
        )
        fresh = mcp_deploy(
            spec, secrets, "--target", "lambda", "--env", "staging", "--config", "GREETING=y"
        )
        assert fresh.returncode == 3, fresh.stderr  # rolled back, from the stack's record

        # ...and when no record is known anywhere, the failed release is left in place
        shutil.rmtree(spec.parent / ".mcp-deploy" / "records")
        bare = _outputs(served["url"], served["artifact_digest"])
        (standin / "scenario.json").write_text(
            json.dumps({"up_outputs": [bare, _outputs(dead, served["artifact_digest"])]})
        )
        assert mcp_deploy(spec, secrets, "--target", "lambda", "--env", "staging").returncode == 0
        shutil.rmtree(spec.parent / ".mcp-deploy" / "records")
        destroys = sum("destroy" in c["argv"] for c in pulumi_standin.calls(standin))
        unknown = mcp_deploy(
            spec, secrets, "--target", "lambda", "--env", "staging", "--config", "GREETING=z"
        )
        assert unknown.returncode == 4, unknown.stderr
        assert "left in place" in unknown.stderr
        assert sum("destroy" in c["argv"] for c in pulumi_standin.calls(standin)) == destroys

        gone = mcp_deploy(spec, secrets, "destroy", "--env", "staging", "--target", "lambda")
        assert gone.returncode == 0, gone.stderr
        argv = [call["argv"] for call in pulumi_standin.calls(standin)]
        assert any("destroy" in a for a in argv)
    finally:
        mcp_deploy(spec, secrets, "destroy", "--env", "local")
