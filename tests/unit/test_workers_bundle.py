"""The Workers bundle: layout, determinism, no secrets, the import check, the size limits, the
runtime's Python and packages, and the entry shim (run against stand-ins for the runtime's
`workers` module, since no Python Worker runs offline).

The fast tests vendor only local wheels with uv offline; the tests that resolve real
packages from PyPI are marked `integration`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import importlib.util
import json
import re
import shutil
import sys
import textwrap
import tomllib
import types
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.artifacts import Artifact
from orchestrator.build.pipeline import build
from orchestrator.errors import OperationError
from orchestrator.spec.loader import load_spec
from targets.workers import WorkersOptions
from targets.workers.imports import ModuleFile, check_imports, module_index
from targets.workers.package import SHIM, runtime_python
from targets.workers.runtime_packages import PYTHON_312, PYTHON_313, python_for
from tests.conftest import EXAMPLE_DIR

CANARY = "canary-5b1f0e7c-secret"
SPEC = """\
[server]
name = "demo"
entry = "demo.app:app"
health_path = "/health"

[config]
GREETING = "hello"

[secrets.MCP_AUTH_TOKEN]
[secrets.API_KEY]

[targets.workers]
account_id = "0123456789abcdef0123456789abcdef"
routes = ["mcp.example.com/*"]

[environments.staging]
secrets.API_KEY = "env:STAGING_API_KEY"
"""
APP = """\
import json
import os

import tinydep


async def app(scope, receive, send):
    return None
"""


def make_wheel(
    directory: Path, name: str, version: str, files: dict[str, str], tag: str = "py3-none-any"
) -> Path:
    """A minimal wheel of `files` (what uv needs to install it)."""
    directory.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    contents = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
        f"Root-Is-Purelib: {'true' if tag.endswith('none-any') else 'false'}\nTag: {tag}\n",
    }
    record = []
    for path, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    contents[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in contents.items():
            archive.writestr(path, text)
    return wheel


TINYDEP = {
    "tinydep/__init__.py": "import json\n\nfrom . import helpers\n",
    "tinydep/helpers.py": textwrap.dedent(
        """\
        import sys

        try:
            import trio  # optional: absent on Workers
        except ImportError:
            trio = None

        if sys.version_info < (3, 11):
            import tomli as tomllib  # not for the runtime's Python
        if sys.platform == "win32":
            import winsdk  # not on Pyodide


        def pretty():
            import rich  # a lazy import of an optional extra
        """
    ),
}


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_DEPLOY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """uv may not reach any index: the fast tests only install local wheels."""
    monkeypatch.setenv("UV_OFFLINE", "1")


@pytest.fixture
def demo(tmp_path: Path, offline: None) -> Callable[..., Path]:
    """A project in tmp_path: `demo.app` importing stdlib and a vendored local wheel."""

    def write(app: str = APP, wheels: tuple[tuple[str, dict[str, str]], ...] = ()) -> Path:
        root = tmp_path / "project"
        (root / "demo").mkdir(parents=True, exist_ok=True)
        (root / "demo" / "__init__.py").write_text("")
        (root / "demo" / "app.py").write_text(app)
        lines = []
        for name, files in (("tinydep", TINYDEP), *wheels):
            wheel = make_wheel(tmp_path / "wheels", name, "1.0", files)
            lines.append(f"{name} @ {wheel.as_uri()}")
        (root / "requirements.txt").write_text("\n".join(lines) + "\n")
        (root / "mcp-deploy.toml").write_text(SPEC)
        return root / "mcp-deploy.toml"

    return write


def build_workers(spec: Path) -> Artifact:
    (artifact,) = build(load_spec(spec), "workers")
    return artifact


def members(artifact: Artifact) -> dict[str, bytes]:
    with zipfile.ZipFile(artifact.path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# --- the bundle ---------------------------------------------------------------------------


def test_bundle_layout(demo: Callable[..., Path]) -> None:
    artifact = build_workers(demo())
    assert (artifact.kind, artifact.target) == ("workers-bundle", "workers")
    files = members(artifact)
    assert {
        "wrangler.toml",
        "mcp-deploy-workers.json",
        "src/entry.py",
        "src/mcp_deploy_runtime.py",
        "src/demo/__init__.py",
        "src/demo/app.py",
        "python_modules/tinydep/__init__.py",
        "python_modules/tinydep/helpers.py",
        "python_modules/tinydep-1.0.dist-info/METADATA",
    } <= set(files)
    assert files["src/entry.py"] == SHIM.read_bytes()
    assert not [n for n in files if "__pycache__" in n or n.endswith((".pyc", "RECORD", ".lock"))]
    assert not [n for n in files if n.endswith(("direct_url.json", "uv_cache.json"))]

    wrangler = tomllib.loads(files["wrangler.toml"].decode())
    assert wrangler == {
        "main": "src/entry.py",
        "compatibility_date": "2025-09-01",
        "compatibility_flags": ["python_workers"],
    }
    manifest = json.loads(files["mcp-deploy-workers.json"])
    assert manifest["runtime"] == {"python": "3.12", "pyodide": "0.27.7"}
    assert manifest["runtime_provided"] == {"modules": ["asgi", "workers"], "packages": {}}
    assert manifest["vendored"] == {"tinydep": "1.0"}
    assert (manifest["main"], manifest["entrypoint"], manifest["app"]) == (
        "src/entry.py",
        "Default",
        "demo.app:app",
    )

    namespace: dict[str, Any] = {}
    exec(files["src/mcp_deploy_runtime.py"], namespace)
    settings = json.loads(namespace["CONFIG_JSON"])
    assert settings == {
        "entry": "demo.app:app",
        "path": "/mcp",
        "health_path": "/health",
        "auth": {"mode": "bearer", "token_env": "MCP_AUTH_TOKEN"},
        "secrets": ["API_KEY", "MCP_AUTH_TOKEN"],
    }
    with zipfile.ZipFile(artifact.path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_two_clean_builds_give_the_same_digest(
    demo: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = demo()
    first = build_workers(spec)
    shutil.rmtree(spec.parent / ".mcp-deploy")
    monkeypatch.setenv("MCP_DEPLOY_CACHE_DIR", str(tmp_path / "another-cache"))
    second = build_workers(spec)
    assert (second.digest, second.inputs_hash) == (first.digest, first.inputs_hash)
    assert build_workers(spec) == second  # unchanged inputs: the stored bundle is reused


def test_no_environment_config_or_secret_value_in_the_bundle(
    demo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = demo()
    (spec.parent / ".env").write_text(f"API_KEY={CANARY}\n")
    (spec.parent / "secret.pem").write_text(CANARY)
    for name in ("MCP_AUTH_TOKEN", "API_KEY", "STAGING_API_KEY", "GREETING"):
        monkeypatch.setenv(name, CANARY)
    artifact = build_workers(spec)
    assert CANARY.encode() not in artifact.path.read_bytes()
    files = members(artifact)
    assert not [name for name, data in files.items() if CANARY.encode() in data]
    assert not [n for n in files if n.endswith((".env", ".pem", "mcp-deploy.toml"))]
    for text in (files["wrangler.toml"], files["src/mcp_deploy_runtime.py"]):
        assert b"STAGING" not in text and b"hello" not in text
    assert not [name for name, data in files.items() if b"0123456789abcdef" in data]
    assert not [name for name, data in files.items() if b"mcp.example.com" in data]
    assert set(tomllib.loads(files["wrangler.toml"].decode())) == {
        "main",
        "compatibility_date",
        "compatibility_flags",
    }


def test_an_unknown_import_fails_naming_the_module_and_the_file(
    demo: Callable[..., Path],
) -> None:
    spec = demo(APP + "\n\ndef handler():\n    import nosuchmodule.sub\n")
    with pytest.raises(OperationError) as failure:
        build_workers(spec)
    assert failure.value.message == (
        "module 'nosuchmodule' (imported by src/demo/app.py:12) is not vendored, not in the "
        "standard library, and not provided by the Python Workers runtime"
    )
    assert failure.value.detail == "src/demo/app.py:12: import nosuchmodule.sub"


def test_a_vendored_module_level_import_must_resolve_too(demo: Callable[..., Path]) -> None:
    broken = {
        "brokendep/__init__.py": "from .core import run\n",
        "brokendep/core.py": "import missingthing\n",
    }
    spec = demo(APP + "import brokendep\n", wheels=(("brokendep", broken),))
    with pytest.raises(OperationError, match="module 'missingthing'") as failure:
        build_workers(spec)
    assert "python_modules/brokendep/core.py:1" in failure.value.message


def test_optional_imports_do_not_fail_the_build(demo: Callable[..., Path]) -> None:
    app = APP + textwrap.dedent(
        """
        from contextlib import suppress
        from typing import TYPE_CHECKING

        try:
            import ujson as fast_json
        except ImportError:
            fast_json = None
        with suppress(ImportError):
            import orjson
        if TYPE_CHECKING:
            import mypy_extensions
        """
    )
    manifest = json.loads(members(build_workers(demo(app)))["mcp-deploy-workers.json"])
    assert manifest["vendored"] == {"tinydep": "1.0"}


def test_size_limits(demo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = demo()
    monkeypatch.setattr("targets.workers.package.MAX_COMPRESSED", 1000)
    with pytest.raises(
        OperationError,
        match=r"^the Worker is [\d.]+ KiB compressed; Workers allow 1\.0 KiB on the Paid plan",
    ):
        build_workers(spec)
    monkeypatch.setattr("targets.workers.package.MAX_UNCOMPRESSED", 1000)
    with pytest.raises(
        OperationError,
        match=r"^the Worker would be [\d.]+ KiB uncompressed; Workers allow 1\.0 KiB",
    ):
        build_workers(spec)


def test_free_plan_limit_is_a_note(
    demo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("targets.workers.package.MAX_COMPRESSED_FREE", 1000)
    notes: list[str] = []
    build(load_spec(demo()), "workers", progress=notes.append)
    assert any("over the Workers Free plan's" in note for note in notes)


def test_server_files_may_not_take_the_entry_name(demo: Callable[..., Path]) -> None:
    spec = demo()
    (spec.parent / "entry.py").write_text("")
    with pytest.raises(OperationError, match=r"file 'entry\.py' at its source root"):
        build_workers(spec)


def test_server_modules_may_not_shadow_vendored_ones(demo: Callable[..., Path]) -> None:
    spec = demo()
    (spec.parent / "tinydep.py").write_text("")
    with pytest.raises(OperationError, match="'tinydep' is both a module of the server"):
        build_workers(spec)


def test_the_entry_module_must_be_in_the_bundle(demo: Callable[..., Path]) -> None:
    spec = demo()
    spec.write_text(
        SPEC.replace('entry = "demo.app:app"', 'entry = "demo.app:app"\nexclude = ["demo/app.py"]')
    )
    with pytest.raises(OperationError, match=r"^server\.entry: module 'demo\.app' is neither"):
        build_workers(spec)


def test_a_wheel_with_compiled_code_is_refused(demo: Callable[..., Path], tmp_path: Path) -> None:
    spec = demo()
    wheel = make_wheel(
        tmp_path / "wheels",
        "wasmdep",
        "1.0",
        {"wasmdep/__init__.py": "", "wasmdep/_speed.so": "\0"},
        tag="cp312-cp312-pyodide_2024_0_wasm32",
    )
    with (spec.parent / "requirements.txt").open("a") as requirements:
        requirements.write(f"wasmdep @ {wheel.as_uri()}\n")
    with pytest.raises(
        OperationError, match=r"package 'wasmdep' 1\.0 installed a wheel with compiled"
    ):
        build_workers(spec)


# --- the runtime's Python -------------------------------------------------------------------


def test_python_version_follows_compatibility_date_and_flags() -> None:
    assert python_for(dt.date(2025, 9, 28), ["python_workers"]) is PYTHON_312
    assert python_for(dt.date(2025, 9, 29), ["python_workers"]) is PYTHON_313
    assert (
        python_for(dt.date(2025, 1, 1), ["python_workers", "python_workers_20250116"]) is PYTHON_313
    )
    assert python_for(dt.date(2026, 7, 1), ["python_workers", "pythonWorkers20260610"]) is None
    options = WorkersOptions(compatibility_flags=["python_workers", "pythonWorkers20260610"])
    with pytest.raises(OperationError, match=r"experimental Python 3\.14"):
        runtime_python(options)


def test_runtime_provided_table_is_consistent() -> None:
    for python in (PYTHON_312, PYTHON_313):
        assert python.compiled["pydantic-core"].imports == ("pydantic_core",)
        assert "pydantic" not in python.compiled  # pure: vendored, never runtime-provided
        for name, provided in python.compiled.items():
            assert provided.version and provided.imports, name
            assert all(dep != name for dep in provided.depends)
    assert PYTHON_312.provided_imports(frozenset({"pyyaml"})) == {"yaml", "_yaml"}


# --- the import check -------------------------------------------------------------------------


def check(tmp_path: Path, files: dict[str, str], python: tuple[int, int] = (3, 12)) -> list[str]:
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(textwrap.dedent(text))
    paths = {relative: tmp_path / relative for relative in files}
    index: dict[str, ModuleFile] = module_index(paths, "src")
    tops = frozenset(relative.split("/")[0].removesuffix(".py") for relative in files)
    report = check_imports(
        ["app"], index, available=tops, runtime=frozenset({"workers"}), python=python
    )
    return [f"{site.file}:{site.line}: {site.module}" for site in report.missing]


def test_import_check_evaluates_version_and_platform_tests(tmp_path: Path) -> None:
    app = """\
        import sys, os
        PY313 = sys.version_info >= (3, 13)
        if sys.version_info >= (3, 12):
            import needed_on_312
        else:
            import only_before_312
        if sys.version_info[:2] == (3, 12):
            import exactly_312
        if PY313:
            import only_313
        if sys.platform == "emscripten" and os.name == "posix":
            import on_pyodide
        elif sys.platform.startswith("win"):
            import only_windows
        """
    assert check(tmp_path, {"app.py": app}) == [
        "src/app.py:4: needed_on_312",
        "src/app.py:8: exactly_312",
        "src/app.py:12: on_pyodide",
    ]
    assert "src/app.py:10: only_313" in check(tmp_path, {"app.py": app}, python=(3, 13))


def test_import_check_follows_relative_imports_and_knows_the_stdlib(tmp_path: Path) -> None:
    files = {
        "app.py": "import pkg\nimport workers\nimport json, asyncio, __future__\n",
        "pkg/__init__.py": "from . import sub\nfrom .sub import thing\n",
        "pkg/sub.py": "import distutils\nimport missing_dep\n",
    }
    assert check(tmp_path, files) == [
        "src/pkg/sub.py:1: distutils",  # removed from the standard library in 3.12
        "src/pkg/sub.py:2: missing_dep",
    ]
    assert check(tmp_path, files, python=(3, 11))[-1] == "src/pkg/sub.py:2: missing_dep"


def test_modules_reached_only_through_optional_imports_are_optional(tmp_path: Path) -> None:
    files = {
        "app.py": "try:\n    from pkg import http2\nexcept ImportError:\n    http2 = None\n",
        "pkg/__init__.py": "",
        "pkg/http2.py": "import h2\n",
    }
    assert check(tmp_path, files) == []
    files["app.py"] += "import pkg.http2\n"  # now also required: h2 must be there
    assert check(tmp_path, files) == ["src/pkg/http2.py:1: h2"]


# --- the entry shim -------------------------------------------------------------------------


class FakeResponse:
    def __init__(self, body: Any, status: int = 200, headers: dict[str, str] | None = None):
        self.body, self.status, self.headers = body, status, headers or {}


class FakeRequest:
    def __init__(self, path: str, headers: dict[str, str] | None = None) -> None:
        self.url = f"https://demo.example.workers.dev{path}"
        self.method = "POST"
        self.headers = headers or {}


class FakeEnv:
    def __init__(self, **bindings: str) -> None:
        self.__dict__.update(bindings)


async def runtime_asgi_fetch(app: Any, request: FakeRequest, env: Any) -> FakeResponse:
    """Like the runtime's adapter: a lifespan cycle around every request."""
    lifespan = asyncio.Queue[dict[str, Any]]()
    acks: list[str] = []

    async def send_lifespan(message: dict[str, Any]) -> None:
        acks.append(message["type"])

    await lifespan.put({"type": "lifespan.startup"})
    await lifespan.put({"type": "lifespan.shutdown"})
    state: dict[str, Any] = {}
    await app({"type": "lifespan", "state": state}, lifespan.get, send_lifespan)
    assert acks == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": request.url.split(".dev", 1)[1], "env": env, "state": state}
    await app(scope, receive, send)
    return FakeResponse(sent[1]["body"], sent[0]["status"])


def server_app() -> Any:
    """An ASGI app whose lifespan may start only once (like the MCP SDK's session manager)."""
    import os

    started: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            assert not started, "lifespan started twice"
            started.append(1)
            scope["state"]["db"] = "ready"
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()  # waits for a shutdown that never comes
            return
        body = json.dumps({"key": os.environ.get("API_KEY"), "state": scope["state"]["db"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body.encode()})

    return app


@pytest.fixture
def shim(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """src/entry.py loaded against stand-ins for the runtime and a generated settings module."""
    workers = types.ModuleType("workers")
    workers.Response = FakeResponse  # type: ignore[attr-defined]
    workers.WorkerEntrypoint = type(  # type: ignore[attr-defined]
        "WorkerEntrypoint", (), {"__init__": lambda self, ctx, env: setattr(self, "env", env)}
    )
    workers.asgi = types.SimpleNamespace(fetch=runtime_asgi_fetch)  # type: ignore[attr-defined]
    settings = types.ModuleType("mcp_deploy_runtime")
    settings.CONFIG_JSON = json.dumps(  # type: ignore[attr-defined]
        {
            "entry": "fake_server:app",
            "path": "/mcp",
            "health_path": "/health",
            "auth": {"mode": "bearer", "token_env": "MCP_AUTH_TOKEN"},
            "secrets": ["API_KEY", "MCP_AUTH_TOKEN"],
        }
    )
    server = types.ModuleType("fake_server")
    server.app = server_app()  # type: ignore[attr-defined]
    for module in (workers, settings, server):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.delenv("API_KEY", raising=False)
    monkeypatch.delenv("GREETING", raising=False)
    spec = importlib.util.spec_from_file_location("mcp_deploy_entry_under_test", SHIM)
    assert spec is not None and spec.loader is not None
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    yield entry


def serve(shim: types.ModuleType, env: FakeEnv, request: FakeRequest) -> FakeResponse:
    response: FakeResponse = asyncio.run(shim.Default(None, env).fetch(request))
    return response


def test_shim_enforces_the_bearer_token(shim: types.ModuleType) -> None:
    env = FakeEnv(MCP_AUTH_TOKEN="t0ken", API_KEY="k")
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic t0ken"}):
        refused = serve(shim, env, FakeRequest("/mcp", headers))
        assert refused.status == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert serve(shim, env, FakeRequest("/health")).status == 200
    assert serve(shim, env, FakeRequest("/mcp", {"authorization": "Bearer t0ken"})).status == 200
    # two Authorization headers arrive joined by ", ": ambiguous, 400 as on every target
    joined = {"authorization": "Bearer t0ken, Bearer t0ken"}
    assert serve(shim, env, FakeRequest("/mcp", joined)).status == 400


def test_shim_refuses_everything_without_a_token_secret(shim: types.ModuleType) -> None:
    response = serve(shim, FakeEnv(), FakeRequest("/mcp", {"authorization": "Bearer "}))
    assert response.status == 500
    assert json.loads(response.body)["hint"] == "the secret MCP_AUTH_TOKEN is not set"


def test_shim_exports_bindings_and_enters_the_lifespan_once(
    shim: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = FakeEnv(
        MCP_AUTH_TOKEN="t0ken",
        API_KEY="k3y",
        GREETING="hi",
        MCP_DEPLOY_ENV_NAMES='["GREETING"]',
    )
    request = FakeRequest("/mcp", {"authorization": "Bearer t0ken"})

    async def twice() -> list[FakeResponse]:
        entry = shim.Default(None, env)
        return [await entry.fetch(request), await entry.fetch(request)]

    for response in asyncio.run(twice()):
        assert response.status == 200
        assert json.loads(response.body) == {"key": "k3y", "state": "ready"}
    import os

    assert (os.environ["API_KEY"], os.environ["GREETING"]) == ("k3y", "hi")
    monkeypatch.delenv("API_KEY")
    monkeypatch.delenv("MCP_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("GREETING")


# --- with real packages from PyPI -------------------------------------------------------------


def copy_project(destination: Path, requirements: str, app: str) -> Path:
    (destination / "demo").mkdir(parents=True)
    (destination / "demo" / "__init__.py").write_text("")
    (destination / "demo" / "app.py").write_text(textwrap.dedent(app))
    (destination / "requirements.txt").write_text(requirements)
    (destination / "mcp-deploy.toml").write_text(SPEC)
    return destination / "mcp-deploy.toml"


@pytest.mark.integration
def test_the_toolbox_example_cannot_run_on_python_workers(tmp_path: Path) -> None:
    """mcp 2.3.0 needs pydantic >= 2.12, hence a pydantic-core of 2.50 or later, while the
    Workers runtime provides pydantic-core 2.27.2 (Pyodide 0.27.7): the build fails, saying
    exactly that. The version it resolves to is whatever the index serves today, so the test
    asserts its property (newer than the runtime's), not the number."""
    shutil.copytree(EXAMPLE_DIR, tmp_path / "toolbox", ignore=shutil.ignore_patterns(".mcp-deploy"))
    with pytest.raises(OperationError) as failure:
        build_workers(tmp_path / "toolbox" / "mcp-deploy.toml")
    requirements = tmp_path / "toolbox" / "requirements.txt"
    prefix = (
        f"the dependencies of {requirements} cannot use the compiled packages the Python "
        "Workers runtime provides (Python 3.12, Pyodide 0.27.7): pydantic-core: the runtime "
        "provides 2.27.2, and without that limit they resolve to "
    )
    assert failure.value.message.startswith(prefix)
    resolved = failure.value.message.removeprefix(prefix)
    assert re.fullmatch(r"\d+\.\d+\.\d+", resolved), resolved
    assert tuple(int(part) for part in resolved.split(".")) >= (2, 50, 0)
    assert "pydantic-core==2.27.2" in (failure.value.detail or "")
    assert not (tmp_path / "toolbox" / ".mcp-deploy" / "store" / "artifacts").exists()


@pytest.mark.integration
def test_a_pure_python_server_with_runtime_provided_packages(tmp_path: Path) -> None:
    app = """\
        import httpx2
        from pydantic import BaseModel
        from starlette.applications import Starlette

        class Item(BaseModel):
            name: str

        app = Starlette()
        """
    spec = copy_project(tmp_path / "p", "starlette\npydantic\nhttpx2\n", app)
    artifact = build_workers(spec)
    files = members(artifact)
    manifest = json.loads(files["mcp-deploy-workers.json"])
    # pydantic is pure and vendored in a version that works with the runtime's pydantic-core
    assert manifest["runtime_provided"]["packages"] == {"pydantic-core": "2.27.2"}
    assert manifest["vendored"]["pydantic"].startswith("2.10.")
    # httpx2 depends on httpx2-jsfetch on Emscripten only: resolved as on the runtime
    assert "httpx2-jsfetch" in manifest["vendored"]
    assert {"js", "pyodide", "workers"} <= set(manifest["runtime_provided"]["modules"])
    assert not [n for n in files if n.startswith("python_modules/pydantic_core")]
    assert not [n for n in files if n.endswith((".so", ".pyd"))]
    assert artifact.size < 3 * 2**20


@pytest.mark.integration
def test_a_compiled_package_the_runtime_lacks_is_named(tmp_path: Path) -> None:
    spec = copy_project(tmp_path / "p", "starlette\nuvloop\n", "import starlette\napp = None\n")
    with pytest.raises(
        OperationError, match=r"^package 'uvloop' \(a dependency of .*\) has no pure-Python wheel"
    ):
        build_workers(spec)
