"""How mcp-deploy's launcher is built and cached (`orchestrator.build.launcher`), without
compiling it: the cache key follows sources, Go version and CPU; the sources hash follows
exactly the files that reach the executable; a missing or old Go is the user's to fix
(InputError), a failed compile shows the compiler's output; a cached build is reused; the
Go cache falls back to mcp-deploy's cache when the user's cannot be written."""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import pytest

from orchestrator.build import launcher
from orchestrator.build.launcher import (
    EXECUTABLE_NAME,
    LAUNCHER_DIR,
    go_environment,
    launcher_binary,
    launcher_key,
    launcher_sources,
    launcher_sources_hash,
)
from orchestrator.errors import InputError, OperationError

GO_VERSION = "go version go1.26.8 linux/amd64"
needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")


@pytest.fixture
def sources_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the launcher's sources that `orchestrator.build.launcher` builds from."""
    copy = tmp_path / "launcher-src"
    shutil.copytree(LAUNCHER_DIR, copy)
    monkeypatch.setattr(launcher, "LAUNCHER_DIR", copy)
    return copy


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MCP_DEPLOY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_go(directory: Path, version: str) -> None:
    """A `go` on PATH that only answers `go version` (to test the version check)."""
    directory.mkdir(parents=True, exist_ok=True)
    go = directory / "go"
    go.write_text(f"#!/bin/sh\necho '{version}'\n")
    go.chmod(0o755)


def test_the_sources_are_the_files_that_reach_the_executable() -> None:
    names = list(launcher_sources())
    assert names == sorted(names)
    assert "go.mod" in names and "main.go" in names
    assert not any(name.endswith("_test.go") for name in names)
    assert all(name in ("go.mod", "go.sum") or name.endswith(".go") for name in names)


def test_the_sources_hash_is_stable_and_follows_the_sources(sources_copy: Path) -> None:
    first = launcher_sources_hash()
    assert launcher_sources_hash() == first
    (sources_copy / "gate_test.go").write_text("package main\n// a test changed\n")
    assert launcher_sources_hash() == first  # tests never reach the executable
    (sources_copy / "README.md").write_text("not a source\n")
    assert launcher_sources_hash() == first
    main = sources_copy / "main.go"
    main.write_bytes(main.read_bytes() + b"\n// changed\n")
    assert launcher_sources_hash() != first


def test_the_sources_hash_needs_no_go(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    expected = launcher_sources_hash()
    monkeypatch.setenv("PATH", str(tmp_path))
    assert launcher_sources_hash() == expected


def test_the_key_follows_sources_go_and_cpu() -> None:
    sources = {"go.mod": b"module m\n", "main.go": b"package main\n"}
    key = launcher_key(sources, GO_VERSION, "x86_64")
    assert key == launcher_key(dict(sources), GO_VERSION + "\n", "x86_64")
    others = [
        launcher_key(sources, GO_VERSION, "arm64"),
        launcher_key(sources, "go version go1.26.9 linux/amd64", "x86_64"),
        launcher_key({**sources, "main.go": b"package main\n\n"}, GO_VERSION, "x86_64"),
        launcher_key(
            {"go.mod": b"module m\n", "other.go": b"package main\n"}, GO_VERSION, "x86_64"
        ),
        launcher_key({**sources, "extra.go": b""}, GO_VERSION, "x86_64"),
    ]
    assert len({key, *others}) == 1 + len(others)


def test_without_go_the_user_is_told_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InputError) as raised:
        launcher_binary("x86_64", lambda _: None)
    issue = raised.value.issues[0]
    assert 'runtime "binary" needs the Go toolchain (1.22 or later)' in issue.message
    assert "once per machine" in issue.message
    assert issue.hint is not None and "install Go" in issue.hint
    assert not cache.exists()


def test_an_old_go_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_go(tmp_path / "bin", "go version go1.21.13 linux/amd64")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(InputError, match=r"needs Go 1\.22 or later.*go1\.21\.13"):
        launcher_binary("arm64", lambda _: None)


def test_an_unknown_cpu_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="riscv64"):
        launcher_binary("riscv64", lambda _: None)


def test_the_go_environment_is_hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOFLAGS", "-race")
    monkeypatch.setenv("GOTOOLCHAIN", "auto")
    env = go_environment("arm64")
    assert env["GOARCH"] == "arm64" and env["GOOS"] == "linux" and env["CGO_ENABLED"] == "0"
    assert env["GOTOOLCHAIN"] == "local" and env["GOPROXY"] == "off" and env["GOWORK"] == "off"
    assert env["GOFLAGS"] == "-buildvcs=false"
    assert go_environment("x86_64", "/somewhere")["GOARCH"] == "amd64"
    assert go_environment("x86_64", "/somewhere")["GOCACHE"] == "/somewhere"


@needs_go
def test_a_cached_launcher_is_reused(cache: Path) -> None:
    _, version = launcher.go_toolchain()
    key = launcher_key(launcher_sources(), version, "arm64")
    cached = cache / "launcher" / key / EXECUTABLE_NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"built before")
    said: list[str] = []
    assert launcher_binary("arm64", said.append) == cached
    assert said == []


@needs_go
def test_a_failed_build_shows_the_compiler_output(sources_copy: Path, cache: Path) -> None:
    (sources_copy / "main.go").write_text("package main\n\nfunc main() {\n\tnot go at all\n}\n")
    said: list[str] = []
    with pytest.raises(OperationError) as raised:
        launcher_binary("x86_64", said.append)
    error = raised.value
    assert "building mcp-deploy's launcher for x86_64 failed" in error.message
    assert error.detail is not None and "main.go:4" in error.detail
    assert said and "building mcp-deploy's launcher" in said[0]
    leftovers = [path for path in (cache / "launcher").rglob("*") if path.is_file()]
    assert leftovers == []  # nothing half-built stays in the cache


@needs_go
def test_the_go_cache_falls_back_when_home_is_unwritable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache: Path
) -> None:
    go, _ = launcher.go_toolchain()
    monkeypatch.delenv("GOCACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert launcher._gocache(go, "x86_64") is None  # the user's default works: keep it
    home = tmp_path / "home-file"
    home.write_text("a file, so nothing can be created under it")
    monkeypatch.setenv("HOME", str(home))
    assert launcher._gocache(go, "x86_64") == str(cache / "launcher" / "go-build")
    monkeypatch.setenv("GOCACHE", str(tmp_path / "mine"))
    assert launcher._gocache(go, "x86_64") is None  # set explicitly: the user's choice


def test_the_module_stays_in_the_build_toolkit() -> None:
    """It imports only orchestrator.paths, .errors, .processes and the standard library."""
    tree = ast.parse(Path(launcher.__file__).read_text())
    imported = {
        name
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    allowed = {"orchestrator.paths", "orchestrator.errors", "orchestrator.processes"}
    outside = {
        name
        for name in imported
        if name not in allowed and name.split(".")[0] not in sys.stdlib_module_names
    }
    assert outside == set()
