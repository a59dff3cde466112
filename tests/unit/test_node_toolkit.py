"""The npm and esbuild pieces of the build toolkit without the network: commands, cache keys,
esbuild options, staging, and how failures become InputError / OperationError (npm is a stand-in
script here; the real tools run in tests/integration/test_node_shims.py)."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from orchestrator.build import esbuild, npm
from orchestrator.errors import InputError, OperationError
from tests.conftest import REPO

SHIMS = REPO / "targets" / "shim" / "node"
CONFIG = {"path": "/mcp", "health_path": None, "auth": {"mode": "none", "token_env": "T"}}


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_DEPLOY_CACHE_DIR", str(tmp_path / "cache"))


def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    """A stand-in `npm` (a shell script) that node_toolchain() returns; it logs its argv."""
    path = tmp_path / "bin" / "npm"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/npm.log"\n{script}\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    toolchain = npm.NodeToolchain(node="node", npm=str(path), version="v20.1.0")
    monkeypatch.setattr(npm, "node_toolchain", lambda: toolchain)
    return path


def test_tool_dirs_are_per_exact_version() -> None:
    assert npm.npm_tool_dir("esbuild", "0.28.2").name == "esbuild@0.28.2"
    scoped = npm.npm_tool_dir("@aws-sdk/client-secrets-manager", "3.1.0")
    assert scoped.name == "@aws-sdk+client-secrets-manager@3.1.0"
    assert scoped.parent.name == "npm-tools"
    for package, version in (("esbuild", "^0.28.2"), ("esbuild", "latest"), ("../x", "1.0.0")):
        with pytest.raises(ValueError):
            npm.npm_tool_dir(package, version)


def test_tool_install_command_and_manifest() -> None:
    command = npm.npm_tool_command("npm", "esbuild", "0.28.2", Path("/p"))
    assert command[:2] == ["npm", "install"]
    assert {"--no-audit", "--no-fund", "--ignore-scripts=false"} <= set(command)
    assert command[-3:] == ["--prefix", "/p", "esbuild@0.28.2"]
    manifest = json.loads(npm.tool_manifest("esbuild", "0.28.2"))
    assert manifest == {"private": True, "allowScripts": {"esbuild@0.28.2": True}}


def test_a_cached_tool_is_used_without_npm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)  # no node, no npm
    cached = npm.npm_tool_dir("esbuild", "0.28.2")
    cached.mkdir(parents=True)
    assert npm.npm_tool("esbuild", "0.28.2", progress=pytest.fail) == cached


def test_missing_node_is_an_input_error_at_server_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "npm" else "/bin/node")
    with pytest.raises(InputError) as raised:
        npm.node_toolchain()
    (issue,) = raised.value.issues
    assert issue.where == "server.runtime" and "npm" in issue.message
    assert issue.hint is not None and "Node.js" in issue.hint


def test_a_failed_tool_install_carries_npm_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_npm(tmp_path, monkeypatch, 'echo "npm error 404 Not Found - esbuild"; exit 1')
    with pytest.raises(OperationError) as raised:
        npm.npm_tool("esbuild", "0.28.2", progress=lambda _line: None)
    assert raised.value.detail is not None and "404 Not Found" in raised.value.detail
    assert not npm.npm_tool_dir("esbuild", "0.28.2").exists()
    assert list(npm.npm_tool_dir("esbuild", "0.28.2").parent.glob(".install-*")) == []


def test_dependency_keys_cover_every_input() -> None:
    base = npm.dependencies_key(b"{}", b"{}", production=True, node_major="20")
    assert len(base) == 32
    assert base == npm.dependencies_key(b"{}", b"{}", production=True, node_major="20")
    others = {
        npm.dependencies_key(b"{ }", b"{}", production=True, node_major="20"),
        npm.dependencies_key(b"{}", b"{ }", production=True, node_major="20"),
        npm.dependencies_key(b"{}", b"{}", production=False, node_major="20"),
        npm.dependencies_key(b"{}", b"{}", production=True, node_major="22"),
    }
    assert base not in others and len(others) == 4


def test_npm_ci_command() -> None:
    assert npm.npm_ci_command("npm", production=True)[-1] == "--omit=dev"
    development = npm.npm_ci_command("npm", production=False)
    assert development[:2] == ["npm", "ci"] and "--omit=dev" not in development
    assert "--ignore-scripts" not in development  # native dependencies need their scripts


def project(tmp_path: Path, package: object, lock: object | None) -> Path:
    directory = tmp_path / "project"
    directory.mkdir(exist_ok=True)
    (directory / "package.json").write_text(json.dumps(package))
    if lock is not None:
        (directory / "package-lock.json").write_text(json.dumps(lock))
    return directory


LOCK = {"lockfileVersion": 3, "packages": {"": {"name": "p"}}}


def test_project_files_refusals(tmp_path: Path) -> None:
    with pytest.raises(InputError) as raised:
        npm.project_files(tmp_path)
    assert raised.value.issues[0].where == "server.source"
    assert "package.json" in raised.value.issues[0].message
    with pytest.raises(InputError) as raised:
        npm.project_files(project(tmp_path, {"name": "p"}, None))
    (issue,) = raised.value.issues
    assert issue.where == "server.source" and "package-lock.json is missing" in issue.message
    assert issue.hint == npm.LOCK_HINT
    with pytest.raises(InputError, match="workspaces"):
        npm.project_files(project(tmp_path, {"name": "p", "workspaces": ["a"]}, LOCK))
    linked = {"packages": {"": {}, "node_modules/local": {"resolved": "../local", "link": True}}}
    with pytest.raises(InputError, match="node_modules/local"):
        npm.project_files(project(tmp_path, {"name": "p"}, linked))
    directory = project(tmp_path, {"name": "p"}, LOCK)
    (directory / "package-lock.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        npm.project_files(directory)


def test_the_shrinkwrap_wins_over_the_package_lock(tmp_path: Path) -> None:
    directory = project(tmp_path, {"name": "p"}, LOCK)
    (directory / "npm-shrinkwrap.json").write_text(json.dumps(LOCK))
    assert npm.project_files(directory)[1].name == "npm-shrinkwrap.json"


def test_npm_ci_runs_without_root_scripts_and_out_of_sync_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = project(tmp_path, {"name": "p", "scripts": {"prepare": "tsc"}}, LOCK)
    (directory / ".npmrc").write_text("registry=http://127.0.0.1:9/\n")
    script = (
        "test -f .npmrc || exit 4\ngrep -q prepare package.json && exit 3\n"
        'echo "npm error \\`npm ci\\` can only install packages when your package.json and '
        'package-lock.json or npm-shrinkwrap.json are in sync."; exit 1'
    )
    fake_npm(tmp_path, monkeypatch, script)
    with pytest.raises(InputError) as raised:
        npm.npm_dependencies(directory, production=True, progress=lambda _line: None)
    (issue,) = raised.value.issues
    assert issue.where == "server.source" and "out of sync" in issue.message
    assert (
        "ci --no-audit --no-fund --no-update-notifier --omit=dev"
        in (tmp_path / "npm.log").read_text()
    )


def test_npm_ci_result_is_cached_with_node_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = project(tmp_path, {"name": "p"}, LOCK)
    fake_npm(tmp_path, monkeypatch, "test -f package-lock.json")
    steps: list[str] = []
    installed = npm.npm_dependencies(directory, production=False, progress=steps.append)
    assert (installed / "node_modules").is_dir() and not (installed / ".npmrc").exists()
    assert npm.npm_dependencies(directory, production=False, progress=steps.append) == installed
    assert len(steps) == 1 and len((tmp_path / "npm.log").read_text().splitlines()) == 1


def test_esbuild_options_for_node() -> None:
    options = esbuild.build_options(
        shim_name="lambda.mjs", platform="node", node_major="22", runtime_config=CONFIG
    )
    assert options["entryPoints"] == ["mcp-deploy/lambda.mjs"]
    assert (options["platform"], options["target"], options["format"]) == ("node", "node22", "esm")
    assert options["external"] == ["@aws-sdk/*"]
    assert options["bundle"] and options["treeShaking"] and not options["minify"]
    assert (options["legalComments"], options["charset"]) == ("none", "utf8")
    assert options["preserveSymlinks"] and not options["sourcemap"]
    assert "const require = " in options["banner"]["js"]
    config = json.loads(json.loads(options["define"]["MCP_DEPLOY_CONFIG"]))
    assert config == CONFIG
    serve = esbuild.build_options(
        shim_name="serve.mjs", platform="node", node_major="20", runtime_config=CONFIG
    )
    assert serve["external"] == []  # a Cloud Run image has no AWS SDK to lean on


def test_esbuild_options_for_workerd() -> None:
    options = esbuild.build_options(
        shim_name="worker.mjs",
        platform="workerd",
        node_major="20",
        runtime_config=CONFIG,
        external=["x", "x"],
    )
    assert (options["platform"], options["target"]) == ("browser", "es2022")
    assert options["conditions"] == ["workerd", "worker", "browser"]
    assert options["define"]["process.env.NODE_ENV"] == '"production"'
    assert options["external"] == ["x"] and "banner" not in options
    with pytest.raises(ValueError):
        esbuild.build_options(
            shim_name="worker.mjs", platform="workerd", node_major="v20", runtime_config=CONFIG
        )


def test_config_json_is_canonical() -> None:
    assert esbuild.config_json({"b": 1, "a": [None]}) == '{"a":[null],"b":1}'


def test_shim_modules_leave_tests_out() -> None:
    names = [path.name for path in esbuild.shim_modules(SHIMS / "worker.mjs")]
    assert "worker.mjs" in names and "gate.mjs" in names
    assert not [name for name in names if name.endswith(".test.mjs")]
    assert names == sorted(names)


def test_only_oauth_bundles_carry_the_verifier_and_jose() -> None:
    oauth = {**CONFIG, "auth": {"mode": "oauth", "token_env": "T", "issuer": "https://i"}}
    assert esbuild.oauth_mode(oauth) and not esbuild.oauth_mode(CONFIG)
    assert esbuild.shim_packages(oauth) == {"jose": esbuild.JOSE_VERSION}
    assert esbuild.shim_packages(CONFIG) == {} and esbuild.shim_packages({}) == {}
    assert esbuild.JOSE_VERSION.startswith("6.") and esbuild.JOSE_VERSION.count(".") == 2
    for module in esbuild.OAUTH_MODULES.values():  # what `mcp-deploy:oauth` resolves to
        assert (SHIMS / module).is_file()
    names = [path.name for path in esbuild.shim_modules(SHIMS / "lambda.mjs")]
    assert "oauth.mjs" in names and "no-oauth.mjs" in names
    gate_test = (SHIMS / "gate.test.mjs").read_text()
    assert 'readFileSync(join(HERE, "../../../orchestrator/build/esbuild.py")' in gate_test


def test_staging_links_the_shims_own_packages(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "src").mkdir(parents=True)
    jose = tmp_path / "tools" / "node_modules" / "jose"
    jose.mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    esbuild._stage(work, SHIMS / "serve.mjs", source, None, {"jose": jose})
    link = work / "mcp-deploy" / "node_modules" / "jose"
    assert link.is_symlink() and link.resolve() == jose.resolve()


def test_staging_mirrors_sources_without_their_node_modules(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for name in ("src/server.ts", "node_modules/x/index.js", "package.json"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("")
    installed = tmp_path / "deps" / "node_modules"
    installed.mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    esbuild._stage(work, SHIMS / "lambda.mjs", source, installed)
    assert sorted(p.name for p in (work / "app").iterdir()) == ["package.json", "src"]
    assert (work / "app" / "src").resolve() == source / "src"
    assert (work / "node_modules").resolve() == installed
    assert (work / "mcp-deploy" / "gate.mjs").read_bytes() == (SHIMS / "gate.mjs").read_bytes()
    other = tmp_path / "other"
    other.mkdir()
    esbuild._stage(other, SHIMS / "lambda.mjs", source, None)
    assert (other / "app" / "node_modules").is_symlink() and not (other / "node_modules").exists()


def test_bundle_checks_the_entry_before_running_anything(tmp_path: Path) -> None:
    arguments = {
        "shim": SHIMS / "serve.mjs",
        "node_modules": None,
        "platform": "node",
        "node_major": "20",
        "runtime_config": CONFIG,
        "out": tmp_path / "out.mjs",
        "progress": pytest.fail,
    }
    with pytest.raises(InputError) as raised:
        esbuild.bundle(app_entry=tmp_path / "missing.ts", **arguments)  # type: ignore[arg-type]
    assert raised.value.issues[0].where == "server.entry"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "server.ts").write_text("")
    (tmp_path / "b").mkdir()
    with pytest.raises(InputError, match="not inside"):
        esbuild.bundle(
            app_entry=tmp_path / "a" / "server.ts",
            source_dir=tmp_path / "b",
            **arguments,  # type: ignore[arg-type]
        )


PLACES = {"root": Path("/src"), "modules": Path("/deps/node_modules"), "shims": SHIMS / "x.mjs"}


def test_esbuild_errors_in_the_servers_files_are_input_errors() -> None:
    error = esbuild._failure(
        [
            {"text": 'Expected ";"', "file": "app/src/server.ts", "line": 3, "column": 4},
            {"text": 'Could not resolve "zod"', "file": "app/src/tools.ts", "line": 1},
            {
                "text": 'No loader is configured for ".node" files: x.node',
                "file": "node_modules/x/index.js",
                "line": 2,
            },
        ],
        **PLACES,
    )
    assert isinstance(error, InputError)
    first, unresolved, native = error.issues
    assert (first.where, first.file, first.line) == ("server.entry", Path("/src/src/server.ts"), 3)
    assert unresolved.hint is not None and "add zod" in unresolved.hint
    assert native.file == Path("/deps/node_modules/x/index.js")
    assert native.hint is not None and "native addon" in native.hint


def test_other_esbuild_errors_are_operation_errors() -> None:
    error = esbuild._failure(
        [
            {"text": "boom", "file": "mcp-deploy/lambda.mjs", "line": 9, "column": 1},
            {"text": "no location"},
        ],
        **PLACES,
    )
    assert isinstance(error, OperationError)
    assert error.detail is not None
    assert f"{SHIMS / 'lambda.mjs'}:9:1: boom" in error.detail and "no location" in error.detail
