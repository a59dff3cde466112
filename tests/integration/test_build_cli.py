"""`mcp-deploy build` on the command line: JSON result, exit codes, errors in user terms."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import MINIMAL, CliResult

pytestmark = pytest.mark.integration

Run = Callable[..., CliResult]
SPEC = MINIMAL + '\n[targets.lambda]\narch = "x86_64"\n\n[targets.cloudrun]\n'


def test_build_json_lists_the_artifact(run_cli: Run, project: Callable[..., Path]) -> None:
    spec = project(SPEC)
    result = run_cli("--spec", str(spec), "build", "--target", "lambda", "--json")
    assert result.code == 0, result.out + result.err
    (artifact,) = result.json()["artifacts"]
    assert artifact["kind"] == "lambda-zip"
    assert artifact["digest"].startswith("sha256:") and artifact["location"] is None
    assert Path(artifact["path"]).is_file()
    again = run_cli("--spec", str(spec), "build", "--target", "lambda", "--json")
    assert again.json()["artifacts"][0]["digest"] == artifact["digest"]


def test_image_without_reachable_base_fails_with_the_way_out(
    run_cli: Run, project: Callable[..., Path]
) -> None:
    # No targets.cloudrun.base: the default base's registry is unreachable here (tests point
    # Docker Hub at a closed loopback port; see tests/integration/test_default_base.py).
    result = run_cli("--spec", str(project(SPEC)), "build", "--target", "cloudrun")
    assert result.code == 1
    assert "cannot resolve the default base image docker.io/library/python:" in result.err
    assert "hint:" in result.err and "targets.cloudrun.base" in result.err


def test_unknown_target_is_bad_input(run_cli: Run, project: Callable[..., Path]) -> None:
    result = run_cli("--spec", str(project(SPEC)), "build", "--target", "lamda")
    assert result.code == 2
    assert "did you mean 'lambda'?" in result.err


def test_missing_wheel_is_reported_by_name(run_cli: Run, project: Callable[..., Path]) -> None:
    spec = project(SPEC)
    (spec.parent / "requirements.txt").write_text("docopt==0.6.2\n")
    result = run_cli("--spec", str(spec), "build", "--target", "lambda", "--json")
    assert result.code == 1
    error = result.json()
    assert (
        error["error"]
        == "package 'docopt' has no binary wheel for x86_64-manylinux2014, Python 3.12"
    )
