"""The user docs stay true: the key reference matches the model; the README's commands exist."""

from __future__ import annotations

from orchestrator.spec.reference import reference
from tests.conftest import REPO


def test_spec_reference_is_current() -> None:
    doc = (REPO / "docs" / "spec.md").read_text()
    assert reference() in doc, (
        "docs/spec.md is stale: regenerate with python -m orchestrator.spec.reference"
    )


def test_readme_commands_exist() -> None:
    readme = (REPO / "README.md").read_text()
    for script in ("scripts/demo", "scripts/test"):
        assert f"./{script}" in readme
        assert (REPO / script).stat().st_mode & 0o111, f"{script} must be executable"
