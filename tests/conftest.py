"""Shared fixtures: spec files in temporary directories and an in-process CLI runner."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.cli.render import OutputMode

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = REPO / "examples" / "toolbox"
EXAMPLE_SPEC = EXAMPLE_DIR / "mcp-deploy.toml"

MINIMAL = """\
[server]
name = "demo"
entry = "demo.app:app"

[secrets.MCP_AUTH_TOKEN]
"""


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True, scope="session")
def _no_public_registry() -> Iterator[None]:
    """Tests never reach a public registry: Docker Hub (the registry of the default Cloud Run
    base) is mirrored to a closed loopback port, unless a test names its own mirror."""
    from tests.support.net import free_port

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "MCP_DEPLOY_REGISTRY_MIRRORS", f"docker.io=127.0.0.1:{free_port()}/no-public-registry"
        )
        yield


@pytest.fixture(autouse=True, scope="session")
def _no_pulumi_downloads() -> Iterator[None]:
    """A Pulumi CLI started by a test never downloads a plugin or checks for updates (both
    would reach the internet): programs that need a provider plugin fail at once instead."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
        patch.setenv("PULUMI_SKIP_UPDATE_CHECK", "true")
        yield


@pytest.fixture(autouse=True)
def _reset_output_mode() -> Iterator[None]:
    OutputMode.json = False
    yield
    OutputMode.json = False


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `mcp-deploy ARGS...` in this process; returns exit code and captured output."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        OutputMode.json = False
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str], Path]:
    """Write a spec (dedented) next to a `demo.app` module; returns the spec's path."""
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "__init__.py").write_text("")
    (tmp_path / "demo" / "app.py").write_text("app = None\n")

    def write(text: str, name: str = "mcp-deploy.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write
