"""The Node.js MCP servers mcp-deploy deploys are real MCP servers under plain Node (the floor
every target builds on), before any of mcp-deploy is involved.

- `toolbox-ts` (examples/toolbox-ts): its entry, `src/server.ts`, is bundled with esbuild and
  its default export `{ fetch }` served on node:http by a few lines of `run.mjs` written here;
  the official Python `mcp` client then initializes, lists the four tools and calls each
  (GREETING reaches greet, the fingerprint is the canary's), and raw requests show it is
  stateless (no Mcp-Session-Id; a tools/call with no initialize before it is answered) with
  JSON responses and 404 off its path. The bundle, built for a neutral platform, imports no
  Node built-in (so it can run on Workers).
- `server-everything` (the published package, unmodified): its `streamableHttp` command with
  PORT set listens there at /mcp; initialize, tools/list and `echo`.
- `server-memory` (the published package, unmodified): over stdio with the Python SDK's stdio
  client, `create_entities` then `read_graph`, stored at MEMORY_FILE_PATH.

Projects are installed once per machine with `npm ci` (`tests.support.node_servers`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.mcp_wire import INITIALIZE
from tests.support.net import free_port, wait_for_port
from tests.support.node_servers import esbuild, npm_project

pytestmark = pytest.mark.integration

CANARY = "canary-secret-8c2e4f6a1b"
TOOLBOX_TOOLS = ["add", "greet", "secret_fingerprint", "word_count"]
ACCEPT = "application/json, text/event-stream"

# Serves the default export `{ fetch }` of the module given as argv[2] on 127.0.0.1:$PORT,
# the way a fetch-based runtime calls it: one web-standard Request in, one Response out.
RUN_MJS = """\
import http from "node:http";
import { Readable } from "node:stream";
import { pathToFileURL } from "node:url";

const handler = (await import(pathToFileURL(process.argv[2]).href)).default;

const server = http.createServer(async (req, res) => {
  try {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      for (const one of Array.isArray(value) ? value : [value]) {
        if (one !== undefined) headers.append(name, one);
      }
    }
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method,
      headers,
      body: hasBody ? Readable.toWeb(req) : undefined,
      duplex: "half",
    });
    const response = await handler.fetch(request, undefined, undefined);
    res.writeHead(response.status, [...response.headers].flat());
    if (response.body) {
      for await (const chunk of response.body) res.write(chunk);
    }
    res.end();
  } catch (error) {
    console.error("run.mjs: the handler failed:", error);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  }
});
server.listen(Number(process.env.PORT), "127.0.0.1", () => {
  console.log(`run.mjs: listening on 127.0.0.1:${process.env.PORT}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
"""


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not on PATH")
    return found


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without the servers' settings, plus `extra`."""
    mine = ("GREETING", "TOOLBOX_API_KEY", "PORT", "MEMORY_FILE_PATH")
    return {**{k: v for k, v in os.environ.items() if k not in mine}, **extra}


@contextmanager
def running(command: list[str], cwd: Path, log: Path, env: dict[str, str]) -> Iterator[int]:
    """Start `command` in `cwd` with PORT (free) and `env` (see `child_env`); yields the
    port once something listens on it. The process is stopped on the way out."""
    port = free_port()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=child_env({"PORT": str(port), **env}),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(
            "127.0.0.1", port, timeout=30, gone=lambda: proc.poll() is not None,
            describe=log.read_text,
        )  # fmt: skip
        yield port
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def tool_value(result: Any) -> Any:
    """A tool result as one value: its structured content, else its text."""
    if result.structured_content is not None:
        return result.structured_content
    return "".join(getattr(item, "text", "") for item in result.content)


def http_session(url: str, calls: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """initialize, tools/list and each call, with the official Python client."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def talk() -> dict[str, Any]:
        async with (
            httpx2.AsyncClient(timeout=30) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            tools = await session.list_tools()
            results = [await session.call_tool(name, args) for name, args in calls]
            return {
                "server": init.server_info.name,
                "protocol": init.protocol_version,
                "tools": sorted(tool.name for tool in tools.tools),
                "errors": [result.is_error for result in results],
                "values": [tool_value(result) for result in results],
            }

    return anyio.run(talk)


def post(
    url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """POST one JSON-RPC message as a streamable HTTP client does; (status, headers, body)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": ACCEPT, **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            found = {k.lower(): v for k, v in response.headers.items()}
            return response.status, found, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


@pytest.fixture(scope="module")
def toolbox_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/toolbox-ts's entry bundled by esbuild (all dependencies inlined) next to
    `run.mjs`; returns the bundle."""
    project = npm_project("toolbox-ts")
    out = tmp_path_factory.mktemp("toolbox-ts")
    bundle = out / "server.mjs"
    subprocess.run(
        [str(esbuild()), "src/server.ts", "--bundle", "--platform=node", "--format=esm",
         f"--outfile={bundle}", "--log-level=warning"],
        cwd=project, check=True, timeout=120,
    )  # fmt: skip
    (out / "run.mjs").write_text(RUN_MJS)
    return bundle


@contextmanager
def toolbox(bundle: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """The bundled toolbox-ts served by run.mjs; yields its MCP URL."""
    command = [node(), str(bundle.parent / "run.mjs"), str(bundle)]
    with running(command, bundle.parent, log, env) as port:
        yield f"http://127.0.0.1:{port}/mcp"


TOOLBOX_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("add", {"a": 2, "b": 40}),
    ("greet", {"name": "smoke"}),
    ("word_count", {"text": "one two  three\nfour"}),
    ("secret_fingerprint", {}),
]


def test_toolbox_ts_speaks_mcp_and_proves_its_secret(toolbox_bundle: Path, tmp_path: Path) -> None:
    log = tmp_path / "toolbox-ts.log"
    with toolbox(toolbox_bundle, {"GREETING": "Hi", "TOOLBOX_API_KEY": CANARY}, log) as url:
        seen = http_session(url, TOOLBOX_CALLS)
    assert seen["server"] == "toolbox-ts"
    assert seen["tools"] == TOOLBOX_TOOLS
    assert seen["errors"] == [False] * 4
    expected = hashlib.sha256(CANARY.encode()).hexdigest()[:12]
    assert seen["values"] == [
        {"result": 42},
        {"result": "Hi, smoke!"},
        {"result": 4},
        {"configured": True, "sha256_12": expected},
    ]
    assert CANARY not in json.dumps(seen) and CANARY not in log.read_text()


def test_toolbox_ts_defaults_without_config_or_secret(toolbox_bundle: Path, tmp_path: Path) -> None:
    with toolbox(toolbox_bundle, {}, tmp_path / "toolbox-ts.log") as url:
        seen = http_session(url, [("greet", {"name": "you"}), ("secret_fingerprint", {})])
    assert seen["values"] == [{"result": "Hello, you!"}, {"configured": False}]


def test_toolbox_ts_is_stateless_with_json_responses(toolbox_bundle: Path, tmp_path: Path) -> None:
    with toolbox(toolbox_bundle, {"GREETING": "Hi"}, tmp_path / "toolbox-ts.log") as url:
        status, headers, body = post(url, INITIALIZE)
        assert status == 200, body
        assert headers["content-type"].startswith("application/json")
        assert "mcp-session-id" not in headers
        init = json.loads(body)
        assert init["id"] == 1 and init["result"]["serverInfo"]["name"] == "toolbox-ts"
        # A request of its own, as on another instance: no initialize, no session before it.
        version = str(INITIALIZE["params"]["protocolVersion"])
        call = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "greet", "arguments": {"name": "again"}},
        }
        status, headers, body = post(url, call, {"Mcp-Protocol-Version": version})
        assert status == 200, body
        assert headers["content-type"].startswith("application/json")
        assert "mcp-session-id" not in headers
        reply = json.loads(body)
        assert reply["id"] == 7
        assert reply["result"]["structuredContent"] == {"result": "Hi, again!"}
        elsewhere = url.removesuffix("/mcp") + "/other"
        status, _headers, _body = post(elsewhere, INITIALIZE)
        assert status == 404


def test_toolbox_ts_bundle_needs_no_node_builtins(tmp_path: Path) -> None:
    """Bundled for a neutral platform with the Workers conditions (what a Workers bundle does)
    the entry resolves without any Node built-in: it only needs web-standard APIs and
    `process.env` (which Workers' nodejs_compat provides)."""
    project = npm_project("toolbox-ts")
    bundle = tmp_path / "neutral.mjs"
    meta = tmp_path / "meta.json"
    subprocess.run(
        [str(esbuild()), "src/server.ts", "--bundle", "--platform=neutral", "--format=esm",
         "--main-fields=module,main", "--conditions=workerd,worker,browser",
         f"--outfile={bundle}", f"--metafile={meta}", "--log-level=warning"],
        cwd=project, check=True, timeout=120,
    )  # fmt: skip
    outputs = json.loads(meta.read_text())["outputs"]  # keyed by paths relative to cwd
    (imports,) = [out["imports"] for key, out in outputs.items() if key.endswith(bundle.name)]
    assert imports == [], imports
    size = bundle.stat().st_size
    print(f"toolbox-ts neutral bundle: {size} bytes")
    assert size < 2_000_000


def test_server_everything_listens_on_port(tmp_path: Path) -> None:
    project = npm_project("server-everything")
    entry = "node_modules/@modelcontextprotocol/server-everything/dist/index.js"
    log = tmp_path / "server-everything.log"
    with running([node(), entry, "streamableHttp"], project, log, {}) as port:
        url = f"http://127.0.0.1:{port}/mcp"
        # It keeps sessions: its initialize answer carries an Mcp-Session-Id.
        status, headers, _body = post(url, INITIALIZE)
        assert status == 200 and headers.get("mcp-session-id")
        seen = http_session(url, [("echo", {"message": "hello from mcp-deploy"})])
    assert seen["server"] == "mcp-servers/everything"
    assert {"echo", "get-env", "get-sum"} <= set(seen["tools"])
    assert seen["errors"] == [False]
    assert seen["values"] == ["Echo: hello from mcp-deploy"]
    assert f"listening on port {port}" in log.read_text()


def test_server_memory_over_stdio(tmp_path: Path) -> None:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    project = npm_project("server-memory")
    memory = tmp_path / "memory.jsonl"
    params = StdioServerParameters(
        command=node(),
        args=["node_modules/@modelcontextprotocol/server-memory/dist/index.js"],
        env={"MEMORY_FILE_PATH": str(memory)},
        cwd=project,
    )
    entity = {"name": "mcp-deploy", "entityType": "tool", "observations": ["deploys MCP servers"]}

    async def talk() -> dict[str, Any]:
        with (tmp_path / "stderr.log").open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                init = await session.initialize()
                tools = await session.list_tools()
                created = await session.call_tool("create_entities", {"entities": [entity]})
                graph = await session.call_tool("read_graph", {})
                return {
                    "server": init.server_info.name,
                    "tools": sorted(tool.name for tool in tools.tools),
                    "errors": [created.is_error, graph.is_error],
                    "created": created.structured_content,
                    "graph": graph.structured_content,
                }

    seen = anyio.run(talk)
    assert seen["server"] == "memory-server"
    assert {"create_entities", "read_graph", "search_nodes"} <= set(seen["tools"])
    assert seen["errors"] == [False, False]
    assert seen["created"] == {"entities": [entity]}
    assert seen["graph"] == {"entities": [entity], "relations": []}
    stored = [json.loads(line) for line in memory.read_text().splitlines() if line.strip()]
    assert stored == [{"type": "entity", **entity}]
