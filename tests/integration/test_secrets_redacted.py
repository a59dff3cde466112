"""A server that prints its secrets (and their encodings) does not make mcp-deploy print them:
a failed deploy's error (text and --json), `logs` and `smoke --target` show
`[redacted:NAME]` and say that they redacted. Destroy removes the deployment's log.

Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import mcp_deploy
from tests.support.example import example_copy

pytestmark = pytest.mark.integration

MCP_DEPLOY = str(Path(sys.executable).with_name("mcp-deploy"))
TOKEN = "redact-token-canary-5e19c0"
API_KEY = "redact-apikey-canary-a7d2b4"
ENCODED = base64.b64encode(API_KEY.encode()).decode()
LEAKY = """\
import base64, os, sys
print("env:", {k: v for k, v in os.environ.items() if k in ("TOOLBOX_API_KEY", "MCP_AUTH_TOKEN")})
print("b64:", base64.b64encode(os.environ["TOOLBOX_API_KEY"].encode()).decode())
print("hex:", os.environ["TOOLBOX_API_KEY"].encode().hex(), flush=True)
sys.stdout.flush()
"""


def project(destination: Path, fails: bool) -> Path:
    spec = example_copy(destination, image_base=True)
    failure = "raise RuntimeError('boom at import: ' + os.environ['TOOLBOX_API_KEY'])\n"
    body = LEAKY + (failure if fails else "from toolbox.app import app\n")
    (destination / "toolbox" / "leaky.py").write_text(body)
    spec.write_text(spec.read_text().replace('"toolbox.app:app"', '"toolbox.leaky:app"'))
    return spec


def cli(spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return mcp_deploy(spec, {"TOOLBOX_LOCAL_TOKEN": TOKEN, "TOOLBOX_LOCAL_API_KEY": API_KEY}, *args)


def assert_clean(text: str) -> None:
    for value in (TOKEN, API_KEY, ENCODED, ENCODED.rstrip("="), API_KEY.encode().hex()):
        assert value not in text, value


@pytest.mark.parametrize("target", ["lambda", "cloudrun"])
def test_a_failing_server_that_prints_its_secrets(tmp_path: Path, target: str) -> None:
    spec = project(tmp_path / "toolbox", fails=True)
    try:
        text = cli(spec, "--target", target)
        failed = 4 if target == "lambda" else 1  # Lambda fails its smoke test, Cloud Run its start
        assert text.returncode == failed, text.stdout + text.stderr
        assert "boom at import" in text.stderr  # the server's own error still shows
        assert "[redacted:TOOLBOX_API_KEY]" in text.stderr and "mcp-deploy redacted" in text.stderr
        assert_clean(text.stdout + text.stderr)
        as_json = cli(spec, "--target", target, "--json")
        assert as_json.returncode == failed
        error = json.loads(as_json.stdout)
        assert "[redacted:" in (error.get("detail") or "") + error["error"]
        assert_clean(as_json.stdout + as_json.stderr)
    finally:
        cli(spec, "destroy", "--env", "local")


@pytest.mark.parametrize("target", ["lambda", "cloudrun"])
def test_logs_of_a_server_that_prints_its_secrets(tmp_path: Path, target: str) -> None:
    spec = project(tmp_path / "toolbox", fails=False)
    try:
        done = cli(spec, "--target", target)
        assert done.returncode == 0, done.stdout + done.stderr
        logs = cli(spec, "logs", "--target", target, "-n", "500")
        assert logs.returncode == 0, logs.stderr
        assert "[redacted:TOOLBOX_API_KEY]" in logs.stdout, logs.stdout
        assert_clean(logs.stdout + logs.stderr)
    finally:
        cli(spec, "destroy", "--env", "local")
    assert not (spec.parent / ".mcp-deploy" / "state" / "local" / target).exists()
