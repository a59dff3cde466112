"""The auth gate every Python shim shares judges what each platform delivers the same way:
one `Authorization: Bearer <token>` passes, a wrong or missing one is 401, and ambiguous
credentials — more than one Authorization header (Cloud Run passes repeats through) or a
value with a comma (Lambda's Function URL joins repeats with commas) — are 400 on every
target. Checked on the gate itself and on both shims' request paths."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import REPO

TOKEN = "gate-token-0123456789abcdef"
SHIMS = [REPO / "targets" / "shim", REPO / "targets" / "cloudrun" / "shim"]


@pytest.fixture
def gate_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """`mcp_deploy_gate` (and the Cloud Run shim) importable as they are inside artifacts."""
    for path in SHIMS:
        monkeypatch.syspath_prepend(str(path))
    monkeypatch.setenv("MCP_AUTH_TOKEN", TOKEN)
    for name in ("mcp_deploy_gate", "mcp_deploy_serve"):
        sys.modules.pop(name, None)
    yield importlib.import_module("mcp_deploy_gate")
    for name in ("mcp_deploy_gate", "mcp_deploy_serve"):
        sys.modules.pop(name, None)


def bearer(module: ModuleType, mode: str = "bearer") -> Any:
    return module.BearerGate(mode, "MCP_AUTH_TOKEN", "/health")


@pytest.mark.parametrize(
    ("values", "status"),
    [
        ([f"Bearer {TOKEN}"], 200),
        ([f"bearer {TOKEN}"], 200),
        ([], 401),
        (["Bearer wrong"], 401),
        ([f"Basic {TOKEN}"], 401),
        ([f"Bearer {TOKEN}", "Bearer wrong"], 400),  # Cloud Run: two headers, either order
        (["Bearer wrong", f"Bearer {TOKEN}"], 400),
        ([f"Bearer {TOKEN}", f"Bearer {TOKEN}"], 400),
        ([f"Bearer {TOKEN},Bearer wrong"], 400),  # Lambda: joined with a comma
        ([f"Bearer wrong, Bearer {TOKEN}"], 400),
        ([f"Bearer {TOKEN},"], 400),
    ],
)
def test_the_gate_refuses_ambiguity_with_400(
    gate_module: ModuleType, values: list[str], status: int
) -> None:
    assert bearer(gate_module).judge("/mcp", values) == status


def test_open_paths_and_modes(gate_module: ModuleType) -> None:
    two = [f"Bearer {TOKEN}", "Bearer x"]
    assert bearer(gate_module).judge("/health", two) == 200
    assert bearer(gate_module, "none").judge("/mcp", two) == 200
    assert bearer(gate_module, "iam").judge("/mcp", []) == 200


def test_a_token_secret_with_a_comma_fails_at_start(
    gate_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_AUTH_TOKEN", "a,b")
    with pytest.raises(RuntimeError, match="comma"):
        bearer(gate_module)
    monkeypatch.setenv("MCP_AUTH_TOKEN", "")
    with pytest.raises(RuntimeError, match="empty"):
        bearer(gate_module)


def test_every_refusal_has_a_json_body(gate_module: ModuleType) -> None:
    headers, body = gate_module.REFUSALS[403]  # a foreign Origin (every mode): JSON-RPC
    assert json.loads(body)["error"]["code"] == -32600
    for status in (400, 401):
        headers, body = gate_module.REFUSALS[status]
        assert headers["content-type"] == "application/json"
        assert json.loads(body)["error"]
        assert headers["www-authenticate"].startswith("Bearer ")


def test_cloud_run_shim_hands_every_header_to_the_gate(gate_module: ModuleType) -> None:
    serve = importlib.import_module("mcp_deploy_serve")
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    config = {
        "path": "/mcp",
        "health_path": "/health",
        "auth": {"mode": "bearer", "token_env": "MCP_AUTH_TOKEN"},
    }
    gated = serve.GatedApp(app, gate_module.Gate(config))

    def status_of(*values: str) -> int:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        headers = [(b"authorization", value.encode()) for value in values]
        scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": headers}
        asyncio.run(gated(scope, None, send))
        return int(sent[0]["status"])

    assert status_of(f"Bearer {TOKEN}") == 200
    assert status_of("Bearer wrong") == 401
    assert status_of(f"Bearer {TOKEN}", "Bearer wrong") == 400
    assert status_of("Bearer wrong", f"Bearer {TOKEN}") == 400
    assert reached == ["/mcp"]
