"""The smoke test's advice is right for what the artifact contains.

- A 421 names the Host the deployment presented and gives the code for the MCP SDK in the
  artifact: mcp 1.x (`FastMCP(transport_security=...)`), mcp 2.x
  (`streamable_http_app(transport_security=...)`), fastmcp (`http_app(allowed_hosts=...)`), or
  both official majors when the SDK is unknown; the SDK is looked up only on a 421.
- A lost session (404 to a request carrying Mcp-Session-Id) is said as such, with the stateless
  HTTP settings of each SDK.
- `sdk_versions` reads the SDK distributions from a Lambda zip and from an OCI image (manifest
  or index) in a store, without running anything.
- Against real servers (integration): a stateful server is recorded as such, and one whose
  follow-up requests reach another instance fails as a lost session.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator.build.inspect import sdk_versions
from orchestrator.smoke import explain_failure, host_hint, smoke

HOST = "toolbox-local-ab12cd34ef.europe-west1.run.app"
URL = "http://127.0.0.1:8123/mcp"


class Refused(Exception):
    """Stands in for the client's error after a 421 (the status comes separately)."""


def test_mcp_1x_hint_puts_transport_security_in_fastmcp() -> None:
    hint = host_hint(HOST, {"mcp": "1.26.0"})
    assert hint.startswith("mcp 1.26.0 takes transport_security in FastMCP(...)")
    assert "from mcp.server.fastmcp import FastMCP" in hint
    assert f'allowed_hosts=["{HOST}", "127.0.0.1:*", "localhost:*"]' in hint
    assert "streamable_http_app(transport_security" not in hint  # 1.x rejects that
    assert '"name:*"' in hint  # the port pattern the SDK understands


def test_mcp_2x_hint_puts_transport_security_in_streamable_http_app() -> None:
    hint = host_hint(HOST, {"mcp": "2.3.0"})
    assert hint.startswith("mcp 2.3.0 takes transport_security in streamable_http_app(...)")
    assert "app = mcp.streamable_http_app(transport_security=TransportSecuritySettings(" in hint
    assert f'allowed_hosts=["{HOST}", "127.0.0.1:*", "localhost:*"]' in hint
    assert "FastMCP(" not in hint


def test_the_mcp_2x_hint_is_code_the_installed_sdk_accepts() -> None:
    """The snippet runs against mcp 2.3.0 (the venv's) and allows exactly what it says."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.transport_security import TransportSecurityMiddleware

    code = "\n".join(
        line[4:] for line in host_hint(HOST, {"mcp": "2.3.0"}).splitlines() if line[:4] == "    "
    )
    scope: dict[str, Any] = {"mcp": MCPServer("hinted")}
    exec(code, scope)
    assert scope["app"] is not None
    settings = scope["TransportSecuritySettings"](allowed_hosts=[HOST, "127.0.0.1:*"])
    check = TransportSecurityMiddleware(settings)
    assert check._validate_host(HOST) and check._validate_host("127.0.0.1:9")
    assert not check._validate_host("other.run.app")


def test_fastmcp_hint_uses_http_app_and_its_patterns() -> None:
    hint = host_hint(HOST, {"fastmcp": "3.4.11", "mcp": "1.30.0"})
    assert hint.startswith("fastmcp 3.4.11 checks the Host itself")
    assert f'app = mcp.http_app(allowed_hosts=["{HOST}"])' in hint
    assert f"FASTMCP_HTTP_ALLOWED_HOSTS='[\"{HOST}\"]'" in hint
    assert '"*.run.app"' in hint
    # The 421 body says whose check answered: the official SDK's, inside a fastmcp server.
    sdk_check = host_hint(HOST, {"fastmcp": "3.4.11", "mcp": "1.30.0"}, refused_by="mcp")
    assert "FastMCP(" in sdk_check and "not fastmcp 3.4.11's" in sdk_check


def test_fastmcp_2x_has_no_host_check_so_the_hint_is_the_sdks() -> None:
    hint = host_hint(HOST, {"fastmcp": "2.12.0", "mcp": "1.x"})
    assert "not fastmcp 2.12.0's" in hint
    assert "mcp 1.x takes transport_security in FastMCP(...)" in hint


def test_unknown_sdk_hint_covers_both_majors() -> None:
    unknown: tuple[dict[str, str] | None, ...] = (None, {})
    for sdk in unknown:
        hint = host_hint(HOST, sdk)
        assert "mcp 1.x: mcp = FastMCP(" in hint
        assert "mcp 2.x: app = mcp.streamable_http_app(transport_security=security)" in hint
        assert f'"{HOST}"' in hint


def test_an_sdk_without_a_host_check_is_not_blamed() -> None:
    hint = host_hint(HOST, {"mcp": "1.9.0"})
    assert "has no DNS-rebinding check" in hint and HOST in hint


def test_421_names_the_presented_host_and_asks_for_the_sdk_only_then() -> None:
    asked: list[bool] = []

    def sdk_of() -> dict[str, str]:
        asked.append(True)
        return {"mcp": "1.26.0"}

    failure, hint = explain_failure(
        URL, Refused(), 421, host=HOST, sdk_of=sdk_of, body="Invalid Host header"
    )
    assert HOST in failure and "421" in failure
    assert "FastMCP(" in hint and HOST in hint and asked == [True]
    failure, _ = explain_failure(URL, Refused(), 401, host=HOST, sdk_of=sdk_of)
    assert "401" in failure and asked == [True]

    # Without a presented host, the URL's is the one refused; an unreadable artifact leaves
    # the hint generic rather than failing the smoke test.
    def unreadable() -> dict[str, str]:
        raise OSError("no such blob")

    failure, hint = explain_failure(URL, Refused(), 421, sdk_of=unreadable)
    assert "127.0.0.1:8123" in failure and "mcp 2.x:" in hint


def test_lost_session_is_classified_with_the_stateless_settings() -> None:
    failure, hint = explain_failure(URL, Refused(), 404, session_lost=True)
    assert failure.startswith("the server lost the MCP session (Mcp-Session-Id) between requests")
    assert "stateless_http=True" in hint and "json_response=True" in hint
    assert "sessionIdGenerator: undefined" in hint
    failure, _ = explain_failure(URL, Refused(), 404)
    assert failure == "no MCP endpoint at /mcp"


def test_sdk_versions_of_a_lambda_zip(tmp_path: Path) -> None:
    path = tmp_path / "function.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mcp-1.26.0.dist-info/METADATA", "Name: mcp\n")
        archive.writestr("fastmcp_slim-3.4.11.dist-info/METADATA", "Name: fastmcp-slim\n")
        archive.writestr("pydantic-2.14.3.dist-info/METADATA", "Name: pydantic\n")
        archive.writestr("server/mcp-9.9.9.dist-info/METADATA", "not at the root\n")
        archive.writestr("server/app.py", "app = None\n")
    assert sdk_versions(path, None) == {"fastmcp": "3.4.11", "mcp": "1.26.0"}
    bare = tmp_path / "bare.zip"
    with zipfile.ZipFile(bare, "w") as archive:
        archive.writestr("app.py", "")
    assert sdk_versions(bare, None) == {}


def _blob(store: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (store / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (store / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(store: Path, files: dict[str, bytes]) -> dict[str, Any]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    entry = _blob(store, gzip.compress(raw.getvalue()))
    return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **entry}


def test_sdk_versions_of_an_oci_image_and_index(tmp_path: Path) -> None:
    store = tmp_path / "store"
    base = _layer(store, {"usr/lib/python3/dist-packages/mcp-0.1.dist-info/METADATA": b""})
    deps = _layer(
        store,
        {
            "app/deps/mcp-2.3.0.dist-info/METADATA": b"Name: mcp\n",
            "app/deps/mcp/__init__.py": b"",
            "app/deps/uvicorn-0.54.0.dist-info/METADATA": b"",
        },
    )
    app = _layer(store, {"app/src/server.py": b""})
    config = _blob(store, b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [base, deps, app],
    }
    manifest_blob = _blob(store, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"platform": {"os": "linux", "architecture": "amd64"}, **manifest_blob}],
    }
    index_blob = _blob(store, json.dumps(index).encode())

    def path(entry: dict[str, Any]) -> Path:
        return store / "blobs" / "sha256" / str(entry["digest"]).removeprefix("sha256:")

    assert sdk_versions(path(manifest_blob), store) == {"mcp": "2.3.0"}
    assert sdk_versions(path(index_blob), None) == {"mcp": "2.3.0"}  # the store it lies in
    no_deps = _blob(store, json.dumps({**manifest, "layers": [app]}).encode())
    assert sdk_versions(path(no_deps), store) == {}


# -- against real servers ------------------------------------------------------------------

STATEFUL = """
from contextlib import AsyncExitStack

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings


def instance():
    server = MCPServer("stateful")

    @server.tool()
    def ping() -> str:
        return "pong"

    open_hosts = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return server.streamable_http_app(transport_security=open_hosts)


first, second = instance(), instance()


async def app(scope, receive, send):
    # Two instances behind one address. With ROUTING = "split", requests of a session
    # (carrying Mcp-Session-Id) land on the instance that did not create it.
    if scope["type"] == "lifespan":
        async with AsyncExitStack() as stack:
            for one in (first, second):
                await stack.enter_async_context(one.router.lifespan_context(one))
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    in_session = any(name == b"mcp-session-id" for name, _ in scope["headers"])
    await (second if in_session and ROUTING == "split" else first)(scope, receive, send)
"""


@pytest.mark.integration
@pytest.mark.parametrize("routing", ["sticky", "split"])
def test_stateful_server_is_recorded_and_a_lost_session_classified(
    tmp_path: Path, routing: str
) -> None:
    from tests.integration.test_example_servers import serve

    (tmp_path / "stateful.py").write_text(textwrap.dedent(STATEFUL) + f"\nROUTING = {routing!r}\n")
    with serve(tmp_path, "stateful:app", {}) as (url, _log):
        result = smoke(url, tool="ping", expect="pong", timeout=20)
    assert result.session_id is True
    if routing == "sticky":
        assert result.ok and result.status is None, result.failure
        return
    assert not result.ok and result.status == 404
    assert result.failure and "lost the MCP session (Mcp-Session-Id)" in result.failure
    assert result.hint and "stateless_http=True" in result.hint


@pytest.mark.integration
def test_stateless_server_has_no_session(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLE_DIR
    from tests.integration.test_example_servers import serve

    (tmp_path / "toolbox").symlink_to(EXAMPLE_DIR / "toolbox")
    with serve(tmp_path, "toolbox.app:app", {}) as (url, _log):
        result = smoke(url, tool="add", arguments={"a": 1, "b": 2}, expect="3")
    assert result.ok and result.session_id is False and result.status is None
