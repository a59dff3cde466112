"""Binary servers (`server.runtime = "binary"`) deployed to local on both emulated targets:
the Rust examples on `rmcp` and `pmcp` and the Go example on the official go-sdk, unmodified,
built by their spec's `build` command, packaged with mcp-deploy's launcher, smoke-tested over
MCP, receiving config and secret, refusing a missing or wrong token.

Lambda-local runs the zip on provided.al2023's contract behind AWS's Lambda Web Adapter (built
from its crate); Cloud Run-local runs the image in Docker: the static Go server from an empty
image and so does the rmcp one (static glibc), the dynamic pmcp one on the default glibc base,
which the tests serve from a loopback mirror of gcr.io (the tests' Debian base: glibc 2.36 and
libgcc_s).

Needs `scripts/services start` (Docker engine, registry on 127.0.0.1:5000), cargo and go.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.binary_servers import example_copy
from tests.support.cli import mcp_deploy
from tests.support.mirror import REGISTRY, mirror_base, new_prefix

pytestmark = pytest.mark.integration

TOKEN = "binary-token-canary-71c4"
KEY = "binary-key-canary-0e9b"
EXAMPLES = ["toolbox-go", "toolbox-rmcp", "toolbox-pmcp"]


@pytest.fixture(scope="module")
def glibc_mirror() -> str:
    """`MCP_DEPLOY_REGISTRY_MIRRORS` serving the default glibc base from loopback."""
    prefix = new_prefix()
    mirror_base(prefix, "distroless/cc-debian12", "nonroot")
    return f"gcr.io={REGISTRY}/{prefix}"


def environment(mirrors: str) -> dict[str, str]:
    return {
        "TOOLBOX_LOCAL_TOKEN": TOKEN,
        "TOOLBOX_LOCAL_API_KEY": KEY,
        "MCP_DEPLOY_REGISTRY_MIRRORS": mirrors,
    }


def call(url: str, tool: str, arguments: dict[str, Any], token: str) -> str:
    """The tool's whole result (content and structured content) as JSON text."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def talk() -> str:
        async with (
            httpx2.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool(tool, arguments)
            assert not result.is_error, result
            return json.dumps(result.model_dump(mode="json"))

    return anyio.run(talk)


def status_of(url: str, authorization: str | None) -> int:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=body, headers=headers), timeout=30
        ) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("target", ["lambda", "cloudrun"])
@pytest.mark.parametrize("example", EXAMPLES)
def test_a_binary_example_deploys_to_local(
    example: str, target: str, tmp_path: Path, glibc_mirror: str
) -> None:
    spec = example_copy(example, tmp_path) / "mcp-deploy.toml"
    env = environment(glibc_mirror)
    try:
        done = mcp_deploy(spec, env, "--target", target, "--env", "local", "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        record = json.loads(done.stdout)["record"]
        assert record["smoke"]["ok"] is True, record["smoke"]
        url = record["url"]

        greeting = tomllib.loads(spec.read_text())["config"]["GREETING"]
        assert f"{greeting}, binary!" in call(url, "greet", {"name": "binary"}, TOKEN)
        assert hashlib.sha256(KEY.encode()).hexdigest()[:12] in call(
            url, "secret_fingerprint", {}, TOKEN
        )
        assert status_of(url, None) == 401
        assert status_of(url, "Bearer wrong") == 401
        assert status_of(url, f"Bearer {TOKEN}, Bearer {TOKEN}") == 400

        # neither canary is anywhere in what was built or recorded
        for path in (spec.parent / ".mcp-deploy").rglob("*"):
            if path.is_file() and path.stat().st_size < 64 * 1024 * 1024:
                data = path.read_bytes()
                assert TOKEN.encode() not in data and KEY.encode() not in data, path
    finally:
        mcp_deploy(spec, env, "destroy", "--target", target, "--env", "local", "--yes")


def test_static_servers_ship_without_a_base_and_a_dynamic_one_on_the_pinned_glibc_base(
    tmp_path: Path, glibc_mirror: str
) -> None:
    env = environment(glibc_mirror)
    layers = {}
    for example in ("toolbox-go", "toolbox-rmcp", "toolbox-pmcp"):
        spec = example_copy(example, tmp_path / example) / "mcp-deploy.toml"
        done = mcp_deploy(spec, env, "build", "--target", "cloudrun", "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        built = json.loads(done.stdout)
        artifact = built["artifacts"][0] if "artifacts" in built else built["artifact"]
        store = spec.parent / ".mcp-deploy" / "store"
        manifest = json.loads(_blob(store, artifact["digest"]).read_bytes())
        layers[example] = len(manifest["layers"])
        lock = spec.parent / "mcp-deploy.lock"
        if example == "toolbox-pmcp":
            pinned = tomllib.loads(lock.read_text())["targets"]["cloudrun"]["base"]
            assert pinned["reference"] == "gcr.io/distroless/cc-debian12:nonroot"
            assert pinned["runtime"] == "binary"
        else:
            assert not lock.exists()  # a static server needs no base to pin
    assert layers["toolbox-go"] == 1  # scratch + the launcher's and server's layer
    assert layers["toolbox-rmcp"] == 1  # static (crt-static) too
    assert layers["toolbox-pmcp"] >= 2  # dynamic: on the glibc base


def _blob(store: Path, digest: str) -> Path:
    found = list(store.rglob(digest.removeprefix("sha256:")))
    assert found, f"{digest} not in {store}"
    return found[0]
