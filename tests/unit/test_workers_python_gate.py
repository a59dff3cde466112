"""The Python Workers shim's gate (`targets/workers/shim/entry.py`): the Origin check every
target's gate makes, then bearer auth.

A Python Worker cannot start offline (workerd fetches Pyodide), so the shim is imported here
with the two runtime modules it needs stood in for: `workers` (its `Response` records what it
was given; `WorkerEntrypoint` a plain class) and the generated `mcp_deploy_runtime`. The gate
itself is the shim's own code.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

SHIM = Path(__file__).resolve().parents[2] / "targets" / "workers" / "shim" / "entry.py"
FOREIGN = {
    "jsonrpc": "2.0",
    "id": None,
    "error": {"code": -32600, "message": "Forbidden: the Origin is not allowed"},
}


class Response:
    def __init__(self, body: str, status: int = 200, headers: dict[str, str] | None = None):
        self.body, self.status, self.headers = body, status, headers or {}


class Request:
    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = {name.lower(): value for name, value in headers.items()}


def load_shim(monkeypatch: pytest.MonkeyPatch, auth: dict[str, Any]) -> Any:
    workers = types.ModuleType("workers")
    workers.Response = Response  # type: ignore[attr-defined]
    workers.WorkerEntrypoint = type("WorkerEntrypoint", (), {})  # type: ignore[attr-defined]
    workers.asgi = types.ModuleType("asgi")  # type: ignore[attr-defined]
    settings = types.ModuleType("mcp_deploy_runtime")
    config = {"entry": "demo:app", "path": "/mcp", "health_path": "/healthz", "auth": auth}
    settings.CONFIG_JSON = json.dumps({**config, "secrets": []})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "workers", workers)
    monkeypatch.setitem(sys.modules, "mcp_deploy_runtime", settings)
    spec = importlib.util.spec_from_file_location("mcp_deploy_workers_entry", SHIM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


URL = "https://toolbox.acme.workers.dev/mcp"
ENV = types.SimpleNamespace(MCP_AUTH_TOKEN="s3cret-token")
BEARER = {"mode": "bearer", "token_env": "MCP_AUTH_TOKEN"}
GOOD = {"authorization": "Bearer s3cret-token"}


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        (None, None),
        ("https://toolbox.acme.workers.dev", None),
        ("HTTPS://Toolbox.Acme.Workers.Dev/", None),
        ("https://app.example.com", None),  # listed
        ("https://evil.example", 403),
        ("null", 403),
        ("http://toolbox.acme.workers.dev", 403),  # another scheme is another origin
    ],
)
def test_the_origin_is_checked_before_the_token(
    monkeypatch: pytest.MonkeyPatch, origin: str | None, status: int | None
) -> None:
    shim = load_shim(monkeypatch, {**BEARER, "allowed_origins": ["https://app.example.com/"]})
    headers = dict(GOOD) if origin is None else {**GOOD, "origin": origin}
    refused = shim._gate.refuse(Request(URL, headers), ENV)
    if status is None:
        assert refused is None
    else:
        assert (refused.status, json.loads(refused.body)) == (status, FOREIGN)


def test_every_mode_checks_the_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    shim = load_shim(monkeypatch, {"mode": "none", "token_env": "MCP_AUTH_TOKEN"})
    assert shim._gate.refuse(Request(URL, {}), ENV) is None
    refused = shim._gate.refuse(Request(URL, {"origin": "https://evil.example"}), ENV)
    assert refused.status == 403


def test_the_public_url_binding_names_the_own_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    shim = load_shim(monkeypatch, BEARER)
    env = types.SimpleNamespace(**vars(ENV), MCP_DEPLOY_PUBLIC_URL="http://127.0.0.1:8787")
    local = Request(URL, {**GOOD, "origin": "http://127.0.0.1:8787"})
    assert shim._gate.refuse(local, env) is None
    assert shim._gate.refuse(Request(URL, {**GOOD, "origin": URL}), env).status == 403


def test_the_health_path_and_bearer_auth_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    shim = load_shim(monkeypatch, BEARER)
    health = "https://toolbox.acme.workers.dev/healthz"
    assert shim._gate.refuse(Request(health, {"origin": "https://evil.example"}), ENV) is None
    assert shim._gate.refuse(Request(URL, {}), ENV).status == 401
    assert (
        shim._gate.refuse(Request(URL, {"authorization": "Bearer a, Bearer b"}), ENV).status == 400
    )
    assert shim._gate.refuse(Request(URL, GOOD), ENV) is None
