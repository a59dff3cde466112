"""The installed `mcp-deploy` run as a subprocess against one spec, with an environment's
secret sources set (how the integration tests drive deployments)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

MCP_DEPLOY = str(Path(sys.executable).with_name("mcp-deploy"))


def mcp_deploy(
    spec: Path, secrets: Mapping[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """`mcp-deploy ARGS` with MCP_DEPLOY_SPEC=`spec` and `secrets` in its environment."""
    env = {**os.environ, **secrets, "MCP_DEPLOY_SPEC": str(spec)}
    return subprocess.run(
        [MCP_DEPLOY, *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )
