"""Start-up discipline: the fast commands never import a Pulumi SDK, the Docker SDK or MCP.

Each command runs in a fresh interpreter with an import hook that records any attempt to
import a forbidden top-level package (whether or not it is installed), so the test fails the
moment such an import is added to the start-up path.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLE_SPEC, REPO

FORBIDDEN = ["pulumi", "pulumi_aws", "pulumi_gcp", "pulumi_cloudflare", "docker", "boto3", "mcp"]

PROBE = """
import json, sys
FORBIDDEN = set(json.loads(sys.argv[1]))
attempts = []

class Recorder:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            attempts.append(name)
        return None

sys.meta_path.insert(0, Recorder())
from orchestrator.cli import main
try:
    code = main(json.loads(sys.argv[2]))
except SystemExit as exit:
    code = exit.code
loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, "attempts": attempts, "loaded": loaded}))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["--spec", str(EXAMPLE_SPEC), "validate"],
        ["schema"],
        ["--spec", str(EXAMPLE_SPEC), "config", "explain", "--env", "prod", "--target", "lambda"],
        ["config", "--help"],
    ],
    ids=lambda args: " ".join(a for a in args if not a.startswith("/")),
)
def test_fast_commands_import_no_heavy_sdk(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(FORBIDDEN), json.dumps(args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(proc.stderr.rsplit("PROBE ", 1)[1])
    assert report["code"] == 0, proc.stderr
    assert report["attempts"] == []
    assert report["loaded"] == []


def test_help_does_not_even_import_click() -> None:
    code = (
        "import sys; from orchestrator.cli import main; main(['--help']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'pydantic', 'rich')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"
