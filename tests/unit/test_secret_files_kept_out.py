"""A file that any environment names as a `file:` secret source never enters an artifact,
whatever include/exclude/ignore patterns say, and `validate` warns when one sits inside the
source tree. The Lambda zip is built for real (no Docker needed) and its members checked."""

from __future__ import annotations

import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.build.app import AppPart
from orchestrator.build.context import BuildContext, InputsHash, default_store
from orchestrator.build.pipeline import build
from orchestrator.build.sources import select_sources
from orchestrator.secret_values import secret_files
from orchestrator.spec.loader import load_spec
from orchestrator.spec.server import ServerSection
from tests.conftest import CliResult

Run = Callable[..., CliResult]
CANARIES = {
    "local-secret.txt": "canary-local-7d21c9",
    "demo/token.txt": "canary-declared-0e5a44",
    "config/staging.key.txt": "canary-staging-91b3fd",
}
SPEC = """\
[server]
name = "demo"
python = "3.12"
entry = "demo.app:app"
include = ["**/*", "local-secret.txt", "demo/token.txt"]

[secrets.MCP_AUTH_TOKEN]
source = "file:demo/token.txt"

[secrets.API_KEY]

[targets.lambda]
region = "eu-west-1"

[environments.local]
secrets.MCP_AUTH_TOKEN = "file:local-secret.txt"
secrets.API_KEY = "file:./config/../local-secret.txt"

[environments.staging]
secrets.API_KEY = "file:config/alias.txt"
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A tiny project whose secret files live inside its source tree; returns the spec."""
    project = tmp_path / "project"
    (project / "demo").mkdir(parents=True)
    (project / "demo" / "__init__.py").write_text("")
    (project / "demo" / "app.py").write_text("app = None\n")
    (project / "config").mkdir()
    for name, value in CANARIES.items():
        (project / name).write_text(value + "\n")
    (project / "config" / "alias.txt").symlink_to(project / "config" / "staging.key.txt")
    spec = project / "mcp-deploy.toml"
    spec.write_text(SPEC)
    return spec


def test_secret_files_are_resolved_like_the_reader_does(tiny: Path) -> None:
    loaded = load_spec(tiny)
    found = secret_files(loaded.spec, loaded.root)
    root = tiny.parent.resolve()
    assert set(found) == {
        root / "local-secret.txt",
        root / "demo" / "token.txt",
        root / "config" / "staging.key.txt",  # through a symlink
    }
    assert found[root / "demo" / "token.txt"] == ("secrets", "MCP_AUTH_TOKEN", "source")


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    spec = load_spec(tiny_spec(tmp_path, 'source = "file:~/token.txt"'))
    assert list(secret_files(spec.spec, spec.root)) == [(tmp_path / "home" / "token.txt")]


def tiny_spec(tmp_path: Path, source: str) -> Path:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "__init__.py").write_text("")
    (tmp_path / "demo" / "app.py").write_text("app = None\n")
    spec = tmp_path / "mcp-deploy.toml"
    spec.write_text(
        f'[server]\nname = "demo"\nentry = "demo.app:app"\n[secrets.MCP_AUTH_TOKEN]\n{source}\n'
    )
    return spec


def test_select_sources_keeps_them_out_whatever_the_patterns(tiny: Path) -> None:
    loaded = load_spec(tiny)
    source = tiny.parent
    keep_out = secret_files(loaded.spec, loaded.root)
    selected = select_sources(source, loaded.spec.server, keep_out=keep_out)
    assert "demo/app.py" in selected
    assert not set(CANARIES) & set(selected)
    (source / "link-to-secret.txt").symlink_to(source / "local-secret.txt")
    only = ServerSection(name="x", entry="demo.app:app", include=["*.txt"])
    assert list(select_sources(source, only, keep_out=keep_out)) == []
    assert "link-to-secret.txt" in select_sources(source, only)  # without keep_out: selected


def test_the_app_part_of_every_packager_leaves_them_out(tiny: Path) -> None:
    """Lambda and Cloud Run take the server's files from `AppPart`."""
    loaded = load_spec(tiny)
    context = BuildContext(loaded=loaded, store=default_store(loaded))
    part = AppPart(context, [], InputsHash("test"))
    assert "demo/app.py" in part.sources
    assert not set(CANARIES) & set(part.sources)


def test_the_lambda_zip_holds_none_of_them(tiny: Path) -> None:
    (artifact,) = build(load_spec(tiny), "lambda")
    with zipfile.ZipFile(artifact.path) as archive:
        names = archive.namelist()
        contents = b"".join(archive.read(name) for name in names)
    assert "demo/app.py" in names
    assert not set(CANARIES) & set(names), names
    for canary in CANARIES.values():
        assert canary.encode() not in contents
    assert b"canary-" not in artifact.path.read_bytes()


def test_validate_warns_and_exits_0(tiny: Path, run_cli: Run) -> None:
    result = run_cli("--spec", str(tiny), "validate")
    assert result.code == 0, result.err
    warnings = [line for line in result.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3, result.err
    assert f"{tiny}:8: secrets.MCP_AUTH_TOKEN.source: secret file " in result.err
    assert "is inside the source directory" in result.err
    assert "kept out of every artifact" in result.err
    assert "move it out of the source tree, or add it to .gitignore" in result.err
    data = run_cli("--spec", str(tiny), "validate", "--json").json()
    assert data["ok"] is True
    assert {w["path"] for w in data["warnings"]} == {
        "secrets.MCP_AUTH_TOKEN.source",
        "environments.local.secrets.MCP_AUTH_TOKEN",
        "environments.staging.secrets.API_KEY",
    }
    for canary in CANARIES.values():
        assert canary not in result.out + result.err


def test_no_warning_for_secret_files_outside_the_source(tmp_path: Path, run_cli: Run) -> None:
    project = tmp_path / "project"
    (project / "src" / "demo").mkdir(parents=True)
    (project / "src" / "demo" / "__init__.py").write_text("")
    (project / "src" / "demo" / "app.py").write_text("app = None\n")
    (project / "token.txt").write_text("value\n")
    spec = project / "mcp-deploy.toml"
    spec.write_text(
        textwrap.dedent(
            """\
            [server]
            name = "demo"
            entry = "demo.app:app"
            source = "src"
            [secrets.MCP_AUTH_TOKEN]
            source = "file:token.txt"
            """
        )
    )
    result = run_cli("--spec", str(spec), "validate", "--json")
    assert result.code == 0 and result.json()["warnings"] == []
