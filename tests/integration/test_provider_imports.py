"""A deployment imports only its own provider SDK, and a plan of a local environment none.

Each command runs in a fresh interpreter (the probe of tests/unit/test_startup_imports.py) and
reports which Pulumi packages it loaded. The artifacts are built for real (hence integration);
the cloud deploy goes through the recording stand-in CLI and ends at its smoke test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support import pulumi_standin
from tests.support.example import example_copy
from tests.support.net import free_port
from tests.unit.test_startup_imports import PROBE

pytestmark = pytest.mark.integration

PROVIDERS = ["pulumi", "pulumi_aws", "pulumi_gcp", "pulumi_cloudflare"]


def loaded_providers(spec: Path, env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            json.dumps(PROVIDERS),
            json.dumps(["--spec", str(spec), *args]),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    report = json.loads(proc.stderr.rsplit("PROBE ", 1)[1])
    return report["code"], sorted({name.split(".")[0] for name in report["loaded"]})


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    return example_copy(tmp_path / "toolbox")


def test_a_plan_of_a_local_environment_imports_no_pulumi(spec: Path) -> None:
    env = {"TOOLBOX_LOCAL_TOKEN": "t" * 8, "TOOLBOX_LOCAL_API_KEY": "k" * 8}
    code, loaded = loaded_providers(spec, env, "plan", "--target", "lambda", "--env", "local")
    assert (code, loaded) == (0, [])


def test_an_offline_plan_imports_only_its_provider(spec: Path) -> None:
    code, loaded = loaded_providers(
        spec, {}, "plan", "--offline", "--target", "lambda", "--env", "staging", "--json"
    )
    assert (code, loaded) == (0, ["pulumi", "pulumi_aws"])


def test_a_cloud_deploy_imports_only_its_provider(spec: Path, tmp_path: Path) -> None:
    standin = tmp_path / "pulumi"
    pulumi_standin.install(standin)
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    (standin / "scenario.json").write_text(json.dumps({"outputs": {"url": dead}}))
    env = {
        "MCP_DEPLOY_PULUMI_ROOT": str(standin),
        "PULUMI_CONFIG_PASSPHRASE": "p",
        "STAGING_MCP_TOKEN": "t" * 8,
        "STAGING_TOOLBOX_KEY": "k" * 8,
    }
    code, loaded = loaded_providers(spec, env, "--target", "lambda", "--env", "staging")
    assert code == 4  # it ran up to its smoke test, against an endpoint that is not there
    assert loaded == ["pulumi", "pulumi_aws"]
