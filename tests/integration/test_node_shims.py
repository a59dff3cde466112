"""The Node shims, bundled for real with esbuild (installed by `npm_tool`) around tiny fetch-handler
servers (plain JS, and TypeScript with a CommonJS dependency outside the sources), run in plain
node: the Lambda handler with Function URL events made by the local front door's own event
builder (and secrets from moto's Secrets Manager on loopback), the Cloud Run server over real
HTTP on 127.0.0.1, the Worker module with fake bindings. Refusals are compared byte for byte with
the Python shims'. Bundles are reproducible and name no path of this machine; only oauth bundles
carry jose. (Tokens from a real OpenID provider: tests/integration/test_oauth_node.py.)"""

from __future__ import annotations

import ast
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrator.build.esbuild import ESBUILD_VERSION, Platform, bundle
from orchestrator.build.npm import node_toolchain, npm_dependencies, npm_tool
from orchestrator.errors import InputError
from orchestrator.paths import cache_root
from targets.aws_lambda.events import function_url_event, response_body
from tests.conftest import REPO
from tests.support.net import free_port, wait_for_port

pytestmark = pytest.mark.integration

SHIMS = REPO / "targets" / "shim" / "node"
TOKEN = "node-token-5f1c2a"
API_KEY = "node-apikey-c0ffee"
AUTH = {"authorization": f"Bearer {TOKEN}"}
CONFIG = {
    "path": "/mcp",
    "health_path": "/health",
    "auth": {"mode": "bearer", "token_env": "TOKEN"},
    "secrets": ["API_KEY", "TOKEN"],
}
OAUTH_CONFIG = {
    **CONFIG,
    "auth": {
        "mode": "oauth",
        "token_env": "MCP_AUTH_TOKEN",
        "issuer": "http://127.0.0.1:9",  # discard port: nothing answers there
        "audience": None,
        "scopes": ["mcp:tools"],
        "algorithms": ["ES256", "RS256"],
        "jwks_uri": None,
        "audience_claim": "aud",
        "scope_claim": "scope",
        "allowed_origins": ["https://app.example"],
    },
}
SECRETS_SDK = ("@aws-sdk/client-secrets-manager", "3.1164.0")

JS_APP = r"""
await new Promise((resolve) => setTimeout(resolve, 5)); // top-level await in the server module
const seen = { API_KEY: process.env.API_KEY ?? null, TOKEN: process.env.TOKEN ? "set" : null };
let release;
const released = new Promise((resolve) => { release = resolve; });
const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const text = (body) => new Response(body, { headers: { "content-type": "text/plain" } });
    if (url.pathname === "/binary") return new Response(new Uint8Array([0, 1, 253, 254, 255]));
    if (url.pathname === "/cookies") {
      const headers = new Headers({ "content-type": "text/plain" });
      headers.append("set-cookie", "a=1; Path=/");
      headers.append("set-cookie", "b=2");
      return new Response("cookies", { headers });
    }
    if (url.pathname === "/release") { release(); return text("released"); }
    if (url.pathname === "/slow") {
      await new Promise((r) => setTimeout(r, 1500));
      return text("slow");
    }
    if (url.pathname === "/sse") {
      const encode = (s) => new TextEncoder().encode(s);
      const body = new ReadableStream({ async start(controller) {
        controller.enqueue(encode("data: first\n\n"));
        await released;
        controller.enqueue(encode("data: second\n\n"));
        controller.close();
      } });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    }
    const body = request.body ? hex(new Uint8Array(await request.arrayBuffer())) : null;
    return Response.json({
      method: request.method, url: request.url, body, seen,
      cookie: request.headers.get("cookie"), authorization: request.headers.get("authorization"),
      env: env === process.env ? "process.env" : Object.keys(env ?? {}).sort(),
      ctx: ctx === undefined ? null : typeof ctx,
    });
  },
};
"""
TS_APP = """
import { digest, where } from "tiny-dep";
import { greeting } from "./lib.js";
interface Answer { greeting: string; digest: string; key: string | null; where: string }
const key: string | null = process.env.API_KEY ?? null;
export default {
  async fetch(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    const answer: Answer = { greeting: greeting(path), digest: digest("x"), key, where: where() };
    return Response.json(answer);
  },
};
"""
TS_LIB = "export const greeting = (path: string): string => `hello ${path}`;\n"
TINY_DEP = """const crypto = require("crypto");
exports.digest = (s) => crypto.createHash("sha256").update(s).digest("hex").slice(0, 8);
exports.where = () => require("path").relative(__dirname, __filename);
"""
LAMBDA_DRIVER = """import { readFileSync } from "node:fs";
const events = JSON.parse(readFileSync(process.argv[3], "utf8"));
const { handler } = await import(process.argv[2]);
const results = [];
for (const event of events) results.push(await handler(event, { awsRequestId: "local" }));
process.stdout.write(JSON.stringify(results));
"""
WORKER_DRIVER = """const { default: worker } = await import(process.argv[2]);
const calls = JSON.parse(process.argv[3]);
const results = [];
for (const [path, headers, env] of calls) {
  const response = await worker.fetch(new Request(`https://w.test${path}`,
    { method: "POST", headers, body: "{}" }), env, { waitUntil() {} });
  results.push([response.status, Object.fromEntries(response.headers), await response.text()]);
}
process.stdout.write(JSON.stringify({ results, key: process.env.API_KEY ?? null }));
"""


@pytest.fixture(scope="module")
def node_major() -> str:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed")
    return node_toolchain().major


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`js/server.mjs`, `ts/src/server.ts` (+ lib.ts, package.json) and `deps/node_modules`."""
    root = tmp_path_factory.mktemp("apps")
    files = {
        "js/server.mjs": JS_APP,
        "ts/package.json": '{"name": "ts-app", "version": "1.0.0", "type": "module"}\n',
        "ts/src/server.ts": TS_APP,
        "ts/src/lib.ts": TS_LIB,
        "deps/node_modules/tiny-dep/package.json": '{"name": "tiny-dep", "main": "index.js"}',
        "deps/node_modules/tiny-dep/index.js": TINY_DEP,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def make(
    apps: Path,
    out: Path,
    shim: str,
    platform: Platform,
    major: str,
    app: str = "js",
    config: Mapping[str, Any] = CONFIG,
) -> Path:
    entry = apps / "js" / "server.mjs" if app == "js" else apps / "ts" / "src" / "server.ts"
    return bundle(
        shim=SHIMS / shim,
        app_entry=entry,
        node_modules=apps / "deps" if app == "ts" else None,
        platform=platform,
        node_major=major,
        runtime_config=config,
        out=out,
        progress=lambda _line: None,
    )


def node(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ["PATH"], **(env or {})}
    return subprocess.run(
        ["node", *args], env=environment, capture_output=True, text=True, timeout=60, check=False
    )


def python_refusals() -> dict[int, dict[str, Any]]:
    sys.path.insert(0, str(REPO / "targets" / "shim"))
    try:
        from mcp_deploy_gate import REFUSALS
    finally:
        sys.path.pop(0)
    return {
        status: {
            "statusCode": status,
            "headers": dict(h),
            "body": b.decode(),
            "isBase64Encoded": False,
        }
        for status, (h, b) in REFUSALS.items()
    }


def python_no_stream() -> dict[str, Any]:
    """NO_STREAM of the Python Lambda shim, read from its source (importing it starts it)."""
    source = (REPO / "targets/aws_lambda/shim/mcp_deploy_lambda.py").read_text(encoding="utf-8")
    for node_ in ast.parse(source).body:
        if isinstance(node_, ast.AnnAssign) and getattr(node_.target, "id", "") == "NO_STREAM":
            value: dict[str, Any] = ast.literal_eval(node_.value)  # type: ignore[arg-type]
            return value
    raise AssertionError("NO_STREAM not found")


def test_node_unit_tests_pass(node_major: str) -> None:
    files = sorted(str(path) for path in SHIMS.glob("*.test.mjs"))  # node >= 21 takes globs
    assert len(files) >= 2
    done = node("--test", *files)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_bundles_are_reproducible_and_name_no_machine_path(
    apps: Path, node_major: str, tmp_path: Path
) -> None:
    moved = tmp_path / "elsewhere"
    shutil.copytree(apps, moved, symlinks=True)
    sizes = {}
    targets: list[tuple[str, Platform]] = [
        ("lambda.mjs", "node"),
        ("serve.mjs", "node"),
        ("worker.mjs", "workerd"),
    ]
    for shim, platform in targets:
        for app, config in (("js", CONFIG), ("ts", CONFIG), ("js-oauth", OAUTH_CONFIG)):
            kind = app.partition("-")[0]
            name = f"{app}-{shim}"
            first = make(apps, tmp_path / "a" / name, shim, platform, node_major, kind, config)
            second = make(moved, tmp_path / "b" / name, shim, platform, node_major, kind, config)
            data = first.read_bytes()
            assert data == second.read_bytes(), (shim, app)
            for path in (apps, moved, tmp_path, REPO, cache_root(), Path.home()):
                assert str(path).encode() not in data, (shim, app, path)
            # jose (and the oauth part of the gate) only in oauth bundles
            oauth = b"mcp-deploy/node_modules/jose/" in data and b"function makeOAuth(" in data
            assert oauth == (config is OAUTH_CONFIG), (shim, app)
            assert (b"mcp-deploy/no-oauth.mjs" in data) == (config is CONFIG), (shim, app)
            sizes[f"{app}/{shim}"] = len(data)
    print(f"esbuild {ESBUILD_VERSION} bundle sizes: {sizes}")


def run_lambda(bundle_path: Path, events: list[dict[str, Any]], env: Mapping[str, str]) -> Any:
    driver = bundle_path.with_name("driver.mjs")
    driver.write_text(LAMBDA_DRIVER, encoding="utf-8")
    events_file = bundle_path.with_name("events.json")
    events_file.write_text(json.dumps(events), encoding="utf-8")
    done = node(str(driver), str(bundle_path), str(events_file), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_lambda_handler_converts_events_and_gates(
    apps: Path, node_major: str, tmp_path: Path
) -> None:
    index = make(apps, tmp_path / "task" / "index.mjs", "lambda.mjs", "node", node_major)
    events = [
        function_url_event(
            "POST", "/mcp", headers={**AUTH, "cookie": "a=1; b=2"}, body=b"\x00\xff", query="x=1"
        ),
        function_url_event("GET", "/binary", headers=AUTH),
        function_url_event("GET", "/cookies", headers=AUTH),
        function_url_event("POST", "/mcp"),
        function_url_event("POST", "/mcp", headers={"authorization": "Bearer wrong"}),
        # The Function URL joins repeated headers with commas (function_url.FunctionURL.serve).
        function_url_event("POST", "/mcp", headers={"authorization": f"Bearer {TOKEN},Bearer x"}),
        function_url_event("GET", "/mcp", headers=AUTH),
        function_url_event("GET", "/mcp"),
        function_url_event("POST", "/health"),
    ]
    env = {"TOKEN": TOKEN, "API_KEY": API_KEY}
    echo, binary, cookies, missing, wrong, repeated, get, get_anonymous, health = run_lambda(
        index, events, env
    )
    seen = json.loads(response_body(echo))
    assert echo["statusCode"] == 200 and echo["isBase64Encoded"] is False
    assert seen["method"] == "POST" and seen["body"] == "00ff"
    domain = events[0]["requestContext"]["domainName"]
    assert seen["url"] == f"https://{domain}/mcp?x=1"
    assert seen["cookie"] == "a=1; b=2"
    assert seen["seen"] == {"API_KEY": API_KEY, "TOKEN": "set"}
    assert seen["env"] == "process.env" and seen["ctx"] == "object"
    assert binary["isBase64Encoded"] is True
    assert response_body(binary) == bytes([0, 1, 253, 254, 255])
    assert cookies["cookies"] == ["a=1; Path=/", "b=2"] and "set-cookie" not in cookies["headers"]
    refusals = python_refusals()
    assert missing == refusals[401] and wrong == refusals[401]
    assert repeated == refusals[400]
    assert get == python_no_stream()
    assert get_anonymous == refusals[401]  # the gate comes first, as in the Python shim
    assert health["statusCode"] == 200


def test_lambda_typescript_app_with_dependencies(
    apps: Path, node_major: str, tmp_path: Path
) -> None:
    index = make(apps, tmp_path / "task" / "index.mjs", "lambda.mjs", "node", node_major, "ts")
    (answer,) = run_lambda(
        index, [function_url_event("POST", "/mcp", headers=AUTH)], {"TOKEN": TOKEN}
    )
    assert json.loads(response_body(answer)) == {
        "greeting": "hello /mcp",
        "digest": "2d711642",  # sha256("x") through node:crypto, required by CommonJS
        "key": None,
        "where": "index.mjs",  # CommonJS's __dirname and __filename: the bundle's
    }


def test_lambda_cold_start_reads_secrets_manager_before_the_app(
    apps: Path, node_major: str, tmp_path: Path
) -> None:
    from tests.integration.test_s3_copy import moto_server

    sdk = npm_tool(*SECRETS_SDK, progress=print)
    task = tmp_path / "task"
    index = make(apps, task / "index.mjs", "lambda.mjs", "node", node_major)
    (task / "node_modules").symlink_to(sdk / "node_modules")  # the runtime's SDK, here
    with moto_server(tmp_path / "moto.log") as url:
        import boto3  # type: ignore[import-untyped]

        client = boto3.client(
            "secretsmanager",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        arns = {
            name: client.create_secret(Name=f"node-{name}", SecretString=value)["ARN"]
            for name, value in (("TOKEN", TOKEN), ("API_KEY", API_KEY))
        }
        aws = {
            "AWS_ENDPOINT_URL": url,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        env = {**aws, "MCP_DEPLOY_SECRET_ARNS": json.dumps(arns)}
        (echo,) = run_lambda(index, [function_url_event("POST", "/mcp", headers=AUTH)], env)
        assert json.loads(response_body(echo))["seen"] == {"API_KEY": API_KEY, "TOKEN": "set"}
        gone = {**arns, "API_KEY": arns["API_KEY"].replace("node-API_KEY", "node-missing")}
        driver = index.with_name("driver.mjs")
        failed = node(
            str(driver),
            str(index),
            str(index.with_name("events.json")),
            env={**aws, "MCP_DEPLOY_SECRET_ARNS": json.dumps(gone)},
        )
    assert failed.returncode != 0
    assert "could not read the secret API_KEY from Secrets Manager" in failed.stderr
    assert TOKEN not in failed.stderr and API_KEY not in failed.stderr


def test_worker_bundle_imports_and_gates_with_bindings(
    apps: Path, node_major: str, tmp_path: Path
) -> None:
    worker = make(apps, tmp_path / "w" / "worker.mjs", "worker.mjs", "workerd", node_major)
    driver = worker.with_name("driver.mjs")
    driver.write_text(WORKER_DRIVER, encoding="utf-8")
    bindings = {"TOKEN": TOKEN, "API_KEY": API_KEY, "OTHER": "x"}
    calls = [
        ["/mcp", AUTH, bindings],
        ["/mcp", {}, bindings],
        ["/mcp", {"authorization": f"Bearer {TOKEN}, Bearer {TOKEN}"}, bindings],
        ["/mcp", AUTH, {}],
        ["/health", {}, {}],
    ]
    done = node(str(driver), str(worker), json.dumps(calls))
    assert done.returncode == 0, done.stderr[-3000:]
    output = json.loads(done.stdout)
    ok, missing, repeated, misconfigured, health = output["results"]
    answer = json.loads(ok[2])
    assert ok[0] == 200 and answer["env"] == ["API_KEY", "OTHER", "TOKEN"]
    assert answer["ctx"] == "object" and answer["seen"]["API_KEY"] == API_KEY
    assert output["key"] == API_KEY  # declared secrets are copied into process.env
    refusals = python_refusals()
    for (status, headers, body), code in ((missing, 401), (repeated, 400)):
        assert (status, headers, body) == (code, refusals[code]["headers"], refusals[code]["body"])
    assert misconfigured[0] == 500
    assert (
        misconfigured[2]
        == '{"error": "server misconfigured", "hint": "the secret TOKEN is not set"}'
    )
    assert health[0] == 200


class Served:
    """`node server.mjs` on 127.0.0.1, secrets handed over on stdin (kept open)."""

    def __init__(self, server: Path, secrets: Mapping[str, str]) -> None:
        self.port = free_port()
        env = {
            "PATH": os.environ["PATH"],
            "PORT": str(self.port),
            "MCP_DEPLOY_HOST": "127.0.0.1",
            "MCP_DEPLOY_SECRETS_STDIN": "1",
        }
        self.log = server.with_name("server.log")
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                ["node", str(server)], env=env, stdin=subprocess.PIPE, stdout=sink, stderr=sink
            )
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(secrets).encode() + b"\n")
        self.process.stdin.flush()

    def wait(self) -> Served:
        wait_for_port(
            "127.0.0.1",
            self.port,
            timeout=30,
            gone=lambda: self.process.poll() is not None,
            describe=lambda: self.log.read_text(errors="replace"),
        )
        return self

    def request(
        self, method: str, path: str, headers: Sequence[tuple[str, str]] = ()
    ) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.putrequest(method, path)
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", "2")
        connection.endheaders(b"{}")
        return connection.getresponse()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def served(apps: Path, node_major: str, tmp_path: Path) -> Iterator[Served]:
    server = make(apps, tmp_path / "app" / "server.mjs", "serve.mjs", "node", node_major)
    running = Served(server, {"TOKEN": TOKEN, "API_KEY": API_KEY}).wait()
    try:
        yield running
    finally:
        running.stop()
    assert TOKEN not in running.log.read_text() and API_KEY not in running.log.read_text()


BEARER = [("Authorization", f"Bearer {TOKEN}")]


def test_serve_gates_and_sees_stdin_secrets_at_import(served: Served) -> None:
    answer = served.request("POST", "/mcp?x=1", BEARER)
    seen = json.loads(answer.read())
    assert answer.status == 200 and seen["seen"] == {"API_KEY": API_KEY, "TOKEN": "set"}
    assert seen["body"] == "7b7d" and seen["url"] == f"http://127.0.0.1:{served.port}/mcp?x=1"
    refusals = python_refusals()
    for headers, status in (([], 401), (BEARER + BEARER, 400), ([("Authorization", "x")], 401)):
        refused = served.request("POST", "/mcp", headers)
        assert refused.status == status
        assert refused.read().decode() == refusals[status]["body"]
        for name, value in refusals[status]["headers"].items():
            assert refused.getheader(name) == value
    assert served.request("POST", "/health").status == 200
    cookies = served.request("GET", "/cookies", BEARER)
    assert cookies.headers.get_all("set-cookie") == ["a=1; Path=/", "b=2"]


def test_serve_streams_events_as_they_come(served: Served) -> None:
    stream = served.request("GET", "/sse", BEARER)
    assert stream.getheader("content-type") == "text/event-stream"
    assert stream.readline() == b"data: first\n"  # before the app lets the second one go
    assert stream.readline() == b"\n"
    assert served.request("POST", "/release", BEARER).read() == b"released"
    assert stream.read() == b"data: second\n\n"


def test_serve_finishes_in_flight_requests_on_sigterm(served: Served) -> None:
    answers: list[tuple[int, bytes]] = []

    def slow() -> None:
        response = served.request("POST", "/slow", BEARER)
        answers.append((response.status, response.read()))

    caller = threading.Thread(target=slow)
    caller.start()
    time.sleep(0.4)
    served.process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(ConnectionRefusedError):
        served.request("POST", "/health")
    caller.join(timeout=10)
    assert answers == [(200, b"slow")]
    assert served.process.wait(timeout=10) == 0


def test_serve_fails_closed_without_the_token(apps: Path, node_major: str, tmp_path: Path) -> None:
    server = make(apps, tmp_path / "app" / "server.mjs", "serve.mjs", "node", node_major)
    running = Served(server, {"API_KEY": API_KEY})
    assert running.process.wait(timeout=30) == 1
    assert "token secret TOKEN is empty or not set" in running.log.read_text()


def test_bundle_errors_in_the_servers_code_name_file_and_line(
    apps: Path, node_major: str, tmp_path: Path
) -> None:
    source = tmp_path / "broken"
    (source / "src").mkdir(parents=True)
    (source / "package.json").write_text('{"name": "broken"}')
    (source / "src" / "server.ts").write_text(
        'import missing from "not-installed";\nexport default { fetch() { return missing(; } };\n'
    )
    with pytest.raises(InputError) as raised:
        bundle(
            shim=SHIMS / "serve.mjs",
            app_entry=source / "src" / "server.ts",
            node_modules=None,
            platform="node",
            node_major=node_major,
            runtime_config=CONFIG,
            out=tmp_path / "out.mjs",
            progress=lambda _line: None,
        )
    issues = raised.value.issues
    assert {issue.where for issue in issues} == {"server.entry"}
    assert all(issue.file == source.resolve() / "src" / "server.ts" for issue in issues)
    assert any(issue.line == 2 for issue in issues)
    assert not (tmp_path / "out.mjs").exists()


def test_npm_dependencies_installs_a_lock_once(
    tmp_path: Path, node_major: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_DEPLOY_CACHE_DIR", str(tmp_path / "cache"))
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text(
        '{"name": "p", "version": "1.0.0", "scripts": {"prepare": "exit 1"}}'
    )
    lock = {
        "name": "p",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {"": {"name": "p", "version": "1.0.0"}},
    }
    (project / "package-lock.json").write_text(json.dumps(lock))
    steps: list[str] = []
    first = npm_dependencies(project, production=True, progress=steps.append)
    assert (first / "node_modules").is_dir() and len(steps) == 1
    assert npm_dependencies(project, production=True, progress=steps.append) == first
    assert len(steps) == 1  # reused, npm not run again
    assert npm_dependencies(project, production=False, progress=steps.append) != first


METADATA_URL = "/.well-known/oauth-protected-resource"


def oauth_answers_are_the_contracts(
    answers: list[tuple[int, dict[str, str], str]], base: str
) -> None:
    """metadata (root, path-suffixed), OPTIONS, challenge, foreign Origin, allowed Origin with
    no token, garbage token, a JWT whose keys cannot be fetched: in that order."""
    (root, suffixed, options, missing, foreign, listed, garbage, unfetchable) = answers
    document = {
        "resource": f"{base}/mcp",
        "authorization_servers": ["http://127.0.0.1:9"],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp:tools"],
    }
    for status, headers, body in (root, suffixed):
        assert status == 200 and json.loads(body) == document
        assert headers["access-control-allow-origin"] == "*"
        assert headers["cache-control"] == "public, max-age=300"
    assert options[0] == 204 and options[1]["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    challenge = f'Bearer resource_metadata="{base}{METADATA_URL}/mcp", scope="mcp:tools"'
    for status, headers, body in (missing, listed):
        assert (status, headers["www-authenticate"]) == (401, challenge)
        assert json.loads(body)["error"] == "unauthorized"
    assert foreign[0] == 403
    assert foreign[2] == (
        '{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, '
        '"message": "Forbidden: the Origin is not allowed"}}'
    )
    assert garbage[0] == 401 and garbage[1]["www-authenticate"].startswith(
        'Bearer error="invalid_token", resource_metadata='
    )
    assert json.loads(garbage[2]) == {
        "error": "invalid_token",
        "hint": "the token is not a signed JWT",
    }
    assert unfetchable[0] == 503
    assert json.loads(unfetchable[2])["error"] == "temporarily_unavailable"


# A JWT-shaped ES256 token (header {"alg":"ES256","kid":"k"}): its key must be fetched.
SHAPED = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0.c2ln"
OAUTH_REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", METADATA_URL, {"origin": "https://anyone.example"}),
    ("GET", f"{METADATA_URL}/mcp", {}),
    ("OPTIONS", f"{METADATA_URL}/mcp", {}),
    ("POST", "/mcp", {}),
    ("POST", "/mcp", {"origin": "https://evil.example"}),
    ("POST", "/mcp", {"origin": "https://app.example"}),
    ("POST", "/mcp", {"authorization": "Bearer not-a-jwt"}),
    ("POST", "/mcp", {"authorization": f"Bearer {SHAPED}"}),
]


def test_oauth_lambda_bundle_serves_metadata_challenges_and_checks_origin(
    apps: Path, node_major: str, tmp_path: Path
) -> None:
    index = make(apps, tmp_path / "task" / "index.mjs", "lambda.mjs", "node", node_major,
                 config=OAUTH_CONFIG)  # fmt: skip
    events = [function_url_event(m, p, headers=h) for m, p, h in OAUTH_REQUESTS]
    base = "http://127.0.0.1:8123"
    results = run_lambda(index, events, {"MCP_DEPLOY_PUBLIC_URL": base})
    answers = [(r["statusCode"], r["headers"], response_body(r).decode()) for r in results]
    oauth_answers_are_the_contracts(answers, base)
    # Without MCP_DEPLOY_PUBLIC_URL: the Function URL's own domain.
    (document,) = run_lambda(index, events[:1], {})
    domain = events[0]["requestContext"]["domainName"]
    assert json.loads(response_body(document))["resource"] == f"https://{domain}/mcp"


def test_oauth_worker_bundle_serves_metadata_challenges_and_checks_origin(
    apps: Path, node_major: str, tmp_path: Path
) -> None:
    worker = make(apps, tmp_path / "w" / "worker.mjs", "worker.mjs", "workerd", node_major,
                  config=OAUTH_CONFIG)  # fmt: skip
    driver = worker.with_name("driver.mjs")
    driver.write_text(
        """const { default: worker } = await import(process.argv[2]);
const results = [];
for (const [method, path, headers, env] of JSON.parse(process.argv[3])) {
  const body = method === "POST" ? "{}" : undefined;
  const request = new Request(`https://w.test${path}`, { method, headers, body });
  const response = await worker.fetch(request, env, { waitUntil() {} });
  results.push([response.status, Object.fromEntries(response.headers), await response.text()]);
}
process.stdout.write(JSON.stringify(results));
""",
        encoding="utf-8",
    )
    base = "http://127.0.0.1:8124"
    calls = [[m, p, h, {"MCP_DEPLOY_PUBLIC_URL": base}] for m, p, h in OAUTH_REQUESTS]
    calls.append(["GET", METADATA_URL, {}, {}])
    done = node(str(driver), str(worker), json.dumps(calls))
    assert done.returncode == 0, done.stderr[-3000:]
    *answers, own = [tuple(answer) for answer in json.loads(done.stdout)]
    oauth_answers_are_the_contracts(answers, base)
    assert json.loads(own[2])["resource"] == "https://w.test/mcp"  # request.url's origin


def test_serve_checks_origin_and_hands_the_body_on_without_it(served: Served) -> None:
    """Without MCP_DEPLOY_PUBLIC_URL the base is `<X-Forwarded-Proto, or https>://<Host>`."""
    host = f"127.0.0.1:{served.port}"
    for origin, proto, status in (
        (f"https://{host}", None, 200),
        (f"http://{host}", "http", 200),
        (f"http://{host}", None, 403),
        ("https://evil.example", None, 403),
    ):
        headers = [*BEARER, ("Origin", origin)]
        if proto is not None:
            headers.append(("X-Forwarded-Proto", proto))
        answer = served.request("POST", "/mcp", headers)
        body = answer.read()
        assert answer.status == status, (origin, proto, body)
        if status == 200:
            assert json.loads(body)["body"] == "7b7d"  # the streamed body, handed on
