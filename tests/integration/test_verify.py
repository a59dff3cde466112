"""`mcp-deploy verify` for real: the official conformance suite (from npm, under Node 22) and
the OAuth discovery chain, through the installed command.

- examples/toolbox run directly (uvicorn) gives the same scenario results as its Lambda-local
  and Cloud Run-local deployments;
- examples/toolbox-ts run directly (its fetch handler on node:http) and on Workers-local: the
  same, but for `dns-rebinding-protection` (an Origin check), which the deployment must pass
  (mcp-deploy's gate validates `Origin` on every target) whatever the bare handler does;
- the toolbox as an OAuth resource server (`auth.mode = "oauth"`) on Lambda-local, with the
  real OpenID provider of tests/support/oidc.py: the whole chain passes; the scenarios run
  with an access token from it (`--token-env`), are reported incomplete without one, and a
  token for another audience is refused (exit 1);
- `[smoke] verify = true`: a deploy whose server breaks a rule of the suite (a tool without a
  description) passes its smoke test, fails verify, and the previous deployment is restored
  (exit 3).

Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000), node and npm.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_example_servers import serve
from tests.integration.test_node_servers import RUN_MJS, running
from tests.support.cli import mcp_deploy
from tests.support.example import example_copy
from tests.support.node_servers import esbuild, node_copy, npm_project
from tests.support.oidc import oidc_provider

pytestmark = pytest.mark.integration

TOKEN = "verify-token-canary-3d81"
KEY = "verify-key-canary-77a0"
SECRETS = {"TOOLBOX_LOCAL_TOKEN": TOKEN, "TOOLBOX_LOCAL_API_KEY": KEY}
ORIGIN_SCENARIO = "dns-rebinding-protection"


def verify(spec: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    done = mcp_deploy(spec, {**SECRETS, **(env or {})}, "verify", *args, "--json")
    assert done.stdout, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {scenario["name"]: scenario["status"] for scenario in report["scenarios"]}


def deploy(spec: Path, target: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = mcp_deploy(spec, {**SECRETS, **(env or {})}, "--target", target, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    record: dict[str, Any] = json.loads(done.stdout)["record"]
    return record


def destroy(spec: Path, target: str) -> None:
    mcp_deploy(spec, SECRETS, "destroy", "--target", target, "--env", "local", "--yes")


@pytest.fixture(scope="module")
def toolbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_copy(tmp_path_factory.mktemp("verify") / "toolbox", image_base=True)


@pytest.fixture(scope="module")
def direct_toolbox(toolbox: Path) -> Iterator[dict[str, Any]]:
    """The toolbox's verify report, run directly with uvicorn (no gate, no token)."""
    with serve(toolbox.parent, "toolbox.app:app", {"TOOLBOX_API_KEY": KEY}) as (url, _log):
        code, report = verify(toolbox, url)
    assert code == 0, report
    yield report


@pytest.mark.parametrize("target", ["lambda", "cloudrun"])
def test_the_toolbox_verifies_the_same_deployed_as_run_directly(
    toolbox: Path, direct_toolbox: dict[str, Any], target: str
) -> None:
    deploy(toolbox, target)
    try:
        code, report = verify(toolbox, "--target", target)
    finally:
        destroy(toolbox, target)
    assert code == 0, report
    direct, deployed = outcomes(direct_toolbox), outcomes(report)
    assert (
        deployed
        == direct
        == {
            "server-initialize": "passed",
            "ping": "passed",
            "tools-list": "passed",
            "resources-list": "passed",
            "prompts-list": "passed",
            ORIGIN_SCENARIO: "passed",
        }
    )
    assert report["skipped"] == direct_toolbox["skipped"]
    assert (direct_toolbox["auth"]["kind"], report["auth"]["kind"]) == ("open", "bearer")
    assert report["auth"]["status"] == "not-oauth" and report["target"] == target
    assert report["suite"] == {
        "package": "@modelcontextprotocol/conformance",
        "version": "0.1.16",
        "node": "22.23.5",
    }


def test_toolbox_ts_verifies_the_same_on_workers_as_run_directly(tmp_path: Path) -> None:
    project = npm_project("toolbox-ts")
    bundle = tmp_path / "server.mjs"
    subprocess.run(
        [str(esbuild()), "src/server.ts", "--bundle", "--platform=node", "--format=esm",
         f"--outfile={bundle}", "--log-level=warning"],
        cwd=project, check=True, timeout=120,
    )  # fmt: skip
    (tmp_path / "run.mjs").write_text(RUN_MJS)
    node = shutil.which("node")
    assert node is not None
    spec = node_copy("toolbox-ts", tmp_path / "toolbox-ts") / "mcp-deploy.toml"
    command = [node, str(tmp_path / "run.mjs"), str(bundle)]
    with running(command, tmp_path, tmp_path / "direct.log", {}) as port:
        _code, direct = verify(spec, f"http://127.0.0.1:{port}/mcp")
    deploy(spec, "workers")
    try:
        code, report = verify(spec, "--target", "workers")
    finally:
        destroy(spec, "workers")
    assert code == 0, report
    direct_outcomes, deployed = outcomes(direct), outcomes(report)
    direct_outcomes.pop(ORIGIN_SCENARIO)  # the bare handler validates no Origin (measured: failed)
    assert deployed.pop(ORIGIN_SCENARIO) == "passed"
    assert (
        deployed
        == direct_outcomes
        == {
            "server-initialize": "passed",
            "ping": "passed",
            "tools-list": "passed",
        }
    )
    skipped = {skip["name"]: skip["reason"] for skip in report["skipped"]}
    assert skipped["resources-list"] == "the server does not advertise the resources capability"
    assert report["skipped"] == direct["skipped"]


def oauth_spec(spec: Path, issuer: str) -> None:
    text = spec.read_text()
    bearer = '[auth]\nmode = "bearer"\ntoken_secret = "MCP_AUTH_TOKEN"'
    assert bearer in text
    oauth = f'[auth]\nmode = "oauth"\nissuer = "{issuer}"\nscopes = ["mcp:tools"]'
    spec.write_text(text.replace(bearer, oauth))


def test_an_oauth_deployment_with_a_real_openid_provider(tmp_path: Path) -> None:
    spec = example_copy(tmp_path / "toolbox", image_base=True)
    with oidc_provider() as idp:
        oauth_spec(spec, idp.issuer)
        url = deploy(spec, "lambda")["url"]
        try:
            access = {"ACCESS": idp.token(audience=url, scopes=("mcp:tools",))}
            code, report = verify(spec, "--target", "lambda", "--token-env", "ACCESS", env=access)
            assert code == 0 and report["status"] == "passed", report
            chain = report["auth"]
            assert (chain["kind"], chain["status"]) == ("oauth", "passed"), chain
            steps = {step["id"]: step for step in chain["steps"]}
            assert steps["challenge"]["message"] == (
                f"resource_metadata={url.removesuffix('/mcp')}"
                "/.well-known/oauth-protected-resource/mcp, scope=mcp:tools"
            )
            assert steps["resource-metadata"]["message"] == f"resource={url}"
            assert steps["authorization-servers"]["message"] == idp.issuer
            assert steps["pkce"]["status"] == "SUCCESS"
            assert steps["client-registration"]["status"] == "SUCCESS"
            assert set(outcomes(report).values()) == {"passed"}
            assert access["ACCESS"] not in json.dumps(report)

            code, report = verify(spec, "--target", "lambda")  # no access token at hand
            assert code == 0 and report["status"] == "warning", report
            assert report["scenarios"] == [] and "access token" in report["incomplete"]
            assert report["auth"]["status"] == "passed"

            other = {"ACCESS": idp.token(audience="http://127.0.0.1:1/mcp")}
            code, report = verify(spec, url, "--token-env", "ACCESS", env=other)
            assert code == 1 and "HTTP 401" in report["problem"], report
        finally:
            destroy(spec, "lambda")


def test_verify_in_the_deploy_gate_restores_the_previous_deployment(tmp_path: Path) -> None:
    spec = example_copy(tmp_path / "toolbox", image_base=True)
    spec.write_text(re.sub(r"\[smoke\]\n", "[smoke]\nverify = true\n", spec.read_text()))
    first = deploy(spec, "lambda")
    try:
        assert first["smoke"]["verify"]["ok"] is True, first["smoke"]
        assert first["smoke"]["verify"]["suite"]["version"] == "0.1.16"
        app = spec.parent / "toolbox" / "app.py"
        app.write_text(  # a tool without a description: tools-list fails, greet still works
            app.read_text().replace(
                '@mcp.tool()\ndef add(a: int, b: int) -> int:\n    """Add two integers."""\n',
                "@mcp.tool()\ndef add(a: int, b: int) -> int:\n",
            )
        )
        done = mcp_deploy(spec, SECRETS, "--target", "lambda", "--json")
        assert done.returncode == 3, done.stdout + done.stderr
        error = json.loads(done.stdout)
        assert "failed verify: tools-list failed" in json.dumps(error)
        status = mcp_deploy(spec, SECRETS, "status", "--json")
        assert first["artifact_digest"][:19] in status.stdout
    finally:
        destroy(spec, "lambda")
