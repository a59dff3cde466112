"""`mcp-deploy smoke URL`: a real MCP exchange, timed, and failures said in user terms."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.smoke import smoke
from tests.conftest import EXAMPLE_DIR, CliResult
from tests.integration.test_example_servers import serve
from tests.support.net import free_port

pytestmark = pytest.mark.integration

Run = Callable[..., CliResult]
TOKEN = "smoke-token-canary-4471"


@pytest.fixture(scope="module")
def example_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app_dir = tmp_path_factory.mktemp("smoke")
    (app_dir / "toolbox").symlink_to(EXAMPLE_DIR / "toolbox")
    with serve(app_dir, "toolbox.app:app", {"GREETING": "Hi"}) as (url, _log):
        yield url


def test_cli_smoke_passes_with_timings(
    run_cli: Run, example_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMOKE_TOKEN", TOKEN)
    result = run_cli(
        "smoke",
        example_url,
        "--token-env",
        "SMOKE_TOKEN",
        "--tool",
        "greet",
        "--arguments",
        '{"name": "smoke"}',
        "--expect",
        "Hi, smoke",
        "--json",
    )
    assert result.code == 0, result.out
    data = result.json()
    assert data["ok"] is True and data["server"] == "toolbox"
    assert "greet" in data["tools"]
    assert data["first_response_ms"] > 0 and data["call_ms"] > 0
    assert TOKEN not in result.out + result.err


def test_missing_tool_and_unexpected_result(example_url: str) -> None:
    missing = smoke(example_url, tool="nope")
    assert not missing.ok and missing.failure == "the server offers no tool 'nope'"
    assert missing.hint and "greet" in missing.hint
    wrong = smoke(example_url, tool="add", arguments={"a": 1, "b": 1}, expect="3")
    assert not wrong.ok and wrong.failure == "tool 'add' answered without '3'"


def test_nothing_listening(run_cli: Run) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    result = run_cli("smoke", url, "--timeout", "10")
    assert result.code == 1
    assert "nothing is listening" in result.err and "hint:" in result.err


def test_wrong_bearer_token_is_reported_as_auth(tmp_path: Path) -> None:
    (tmp_path / "gated.py").write_text(
        textwrap.dedent(
            """
            from starlette.responses import JSONResponse

            async def app(scope, receive, send):
                response = JSONResponse({"error": "unauthorized"}, status_code=401)
                await response(scope, receive, send)
            """
        )
    )
    with serve(tmp_path, "gated:app", {}) as (url, _log):
        result = smoke(url, token="wrong", timeout=10)
    assert not result.ok and result.failure and "401" in result.failure
    assert result.hint and "token" in result.hint


def test_421_explains_host_checking(tmp_path: Path) -> None:
    (tmp_path / "strict.py").write_text(
        textwrap.dedent(
            """
            from mcp.server.mcpserver import MCPServer

            mcp = MCPServer("strict")
            app = mcp.streamable_http_app(stateless_http=True, json_response=True)
            """
        )
    )
    with serve(tmp_path, "strict:app", {}, host="127.0.0.2") as (url, _log):
        result = smoke(url, timeout=10)
    assert not result.ok and result.failure and "421" in result.failure
    assert result.hint and "allowed_hosts" in result.hint
