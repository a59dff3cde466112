"""`bytecode_only = true`: the example's dependencies ship as bytecode only, the artifacts are
smaller, reproducible, and the example deploys to Lambda-local and (with Docker up) to the
local Cloud Run emulation and passes its smoke test.

Needs `scripts/services start` for the image part (Docker engine, registry on 127.0.0.1:5000).
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestrator.artifacts import Artifact
from orchestrator.build.pipeline import build
from orchestrator.spec.loader import load_spec
from tests.support.cli import mcp_deploy
from tests.support.example import example_copy

pytestmark = pytest.mark.integration

TOKEN = "bytecode-token-canary-61c0"
API_KEY = "bytecode-apikey-canary-3d7f"
SECRETS = {"TOOLBOX_LOCAL_TOKEN": TOKEN, "TOOLBOX_LOCAL_API_KEY": API_KEY}


def project(destination: Path, bytecode_only: bool) -> Path:
    """The example with the test base image, with or without `bytecode_only` on both targets."""
    spec = example_copy(destination, image_base=True)
    if bytecode_only:
        text = spec.read_text()
        for table in ("[targets.lambda]", "[targets.cloudrun]"):
            assert table in text
            text = text.replace(table, f"{table}\nbytecode_only = true")
        spec.write_text(text)
    return spec


def docker_up() -> bool:
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    root = tmp_path_factory.mktemp("bytecode")
    return {flag: project(root / f"toolbox-{flag}", flag) for flag in (False, True)}


@pytest.fixture(scope="module")
def zips(specs: dict[bool, Path]) -> dict[bool, Artifact]:
    return {flag: build(load_spec(spec), "lambda")[0] for flag, spec in specs.items()}


def test_the_zip_holds_dependencies_as_bytecode_only(zips: dict[bool, Artifact]) -> None:
    with zipfile.ZipFile(zips[True].path) as archive:
        names = set(archive.namelist())
    assert "pydantic/main.pyc" in names and "pydantic/main.py" not in names
    assert "mcp/__init__.pyc" in names and "mcp/__init__.py" not in names
    assert not [name for name in names if "__pycache__/" in name and name.startswith("mcp/")]
    # the server's files and the shims keep their sources (tracebacks show their lines)
    assert {"toolbox/app.py", "mcp_deploy_lambda.py"} <= names
    assert any(name.startswith("toolbox/__pycache__/app.") for name in names)
    # package metadata and data files stay
    assert any(name.endswith(".dist-info/METADATA") for name in names)
    assert "certifi/cacert.pem" in names or not any(n.startswith("certifi/") for n in names)


def test_the_zip_is_smaller_and_another_artifact(zips: dict[bool, Artifact]) -> None:
    assert zips[True].size < 0.9 * zips[False].size
    assert zips[True].digest != zips[False].digest
    assert zips[True].inputs_hash != zips[False].inputs_hash


def test_two_clean_builds_give_the_same_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zips: dict[bool, Artifact]
) -> None:
    monkeypatch.setenv("MCP_DEPLOY_CACHE_DIR", str(tmp_path / "cache"))
    spec = project(tmp_path / "toolbox", True)
    (again,) = build(load_spec(spec), "lambda")
    assert again.digest == zips[True].digest


@contextmanager
def deploy(spec: Path, target: str) -> Iterator[dict[str, object]]:
    done = mcp_deploy(spec, SECRETS, "deploy", "--target", target, "--env", "local", "--json")
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        record: dict[str, object] = json.loads(done.stdout)["record"]
        yield record
    finally:
        mcp_deploy(spec, SECRETS, "destroy", "--env", "local", "--target", target)


def test_deploys_to_lambda_local_and_passes_smoke(specs: dict[bool, Path]) -> None:
    with deploy(specs[True], "lambda") as record:
        smoke = record["smoke"]
        assert isinstance(smoke, dict) and smoke["ok"] is True, smoke


def test_the_image_is_smaller(specs: dict[bool, Path]) -> None:
    if not docker_up():  # the base image is made with Docker and kept in the local registry
        pytest.skip("Docker is not up (scripts/services start)")
    plain, bytecode = (build(load_spec(specs[flag]), "cloudrun")[0] for flag in (False, True))
    assert bytecode.size < plain.size - 2_000_000
    assert bytecode.digest != plain.digest


def test_the_image_deploys_locally_and_passes_smoke(specs: dict[bool, Path]) -> None:
    if not docker_up():
        pytest.skip("Docker is not up (scripts/services start)")
    with deploy(specs[True], "cloudrun") as record:
        smoke = record["smoke"]
        assert isinstance(smoke, dict) and smoke["ok"] is True, smoke
