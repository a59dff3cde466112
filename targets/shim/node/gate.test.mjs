// Tests of gate.mjs (run: node --test targets/shim/node/). The Python side
// (tests/integration/test_node_shims.py) checks the same answers against mcp_deploy_gate.py.

import assert from "node:assert/strict";
import test from "node:test";
import {
  AMBIGUOUS_BODY,
  REFUSALS,
  UNAUTHORIZED_BODY,
  bearerToken,
  judgeBearer,
  makeGate,
} from "./gate.mjs";

const AUTH = { mode: "bearer", token_env: "TOKEN", health_path: "/health" };
const ENV = { TOKEN: "s3cret-token" };

function post(path, ...authorization) {
  const headers = new Headers();
  for (const value of authorization) headers.append("authorization", value);
  return new Request(`https://example.test${path}`, { method: "POST", headers });
}

test("refusal bodies are Python's json.dumps output", () => {
  assert.equal(UNAUTHORIZED_BODY, '{"error": "unauthorized", "hint": "send Authorization: Bearer <token>"}');
  assert.equal(
    AMBIGUOUS_BODY,
    '{"error": "invalid_request", "hint": "send exactly one Authorization header, with one bearer token"}',
  );
  assert.deepEqual(Object.keys(REFUSALS), ["400", "401"]);
});

test("none and iam let everything through", () => {
  for (const mode of ["none", "iam"]) {
    const gate = makeGate({ mode, token_env: "TOKEN", health_path: null }, {});
    assert.equal(gate(post("/mcp")), null);
  }
});

test("bearer: the right token passes, in any scheme case and with extra spaces", () => {
  const gate = makeGate(AUTH, ENV);
  assert.equal(gate(post("/mcp", "Bearer s3cret-token")), null);
  assert.equal(gate(post("/mcp", "bearer s3cret-token")), null);
  assert.equal(gate(post("/mcp", "Bearer  s3cret-token")), null);
});

test("bearer: missing, wrong or other-scheme credentials get 401 with the exact answer", async () => {
  const gate = makeGate(AUTH, ENV);
  for (const request of [post("/mcp"), post("/mcp", "Bearer nope"), post("/mcp", "Basic s3cret-token")]) {
    const refused = gate(request);
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get("www-authenticate"), 'Bearer realm="mcp"');
    assert.equal(refused.headers.get("content-type"), "application/json");
    assert.equal(await refused.text(), UNAUTHORIZED_BODY);
  }
});

test("bearer: repeated or comma-joined Authorization values get 400", async () => {
  const gate = makeGate(AUTH, ENV);
  for (const request of [
    post("/mcp", "Bearer s3cret-token", "Bearer s3cret-token"),
    post("/mcp", "Bearer s3cret-token,Bearer other"),
  ]) {
    const refused = gate(request);
    assert.equal(refused.status, 400);
    assert.equal(refused.headers.get("www-authenticate"), 'Bearer realm="mcp", error="invalid_request"');
    assert.equal(await refused.text(), AMBIGUOUS_BODY);
  }
});

test("bearer: the health path is open, other paths are not", () => {
  const gate = makeGate(AUTH, ENV);
  assert.equal(gate(post("/health")), null);
  assert.equal(gate(post("/health/")).status, 401);
  assert.equal(makeGate({ ...AUTH, health_path: null }, ENV)(post("/health")).status, 401);
});

test("bearer fails closed without a usable token secret", () => {
  assert.throws(() => makeGate(AUTH, {}), /TOKEN is empty or not set/);
  assert.throws(() => makeGate(AUTH, { TOKEN: "" }), /TOKEN is empty or not set/);
  assert.throws(() => makeGate(AUTH, { TOKEN: "a,b" }), /contains a comma/);
  assert.throws(() => bearerToken("TOKEN", undefined), /empty or not set/);
});

test("judgeBearer mirrors BearerGate.judge", () => {
  const cases = [
    [null, 401],
    ["", 401],
    ["Bearer", 401],
    ["Bearer ", 401],
    ["Bearer tok", 200],
    ["BEARER tok", 200],
    ["Bearer tok ", 200],
    ["Bearer tok,", 400],
    [",", 400],
    ["Token tok", 401],
    ["Bearer tok2", 401],
  ];
  for (const [value, status] of cases) assert.equal(judgeBearer("tok", value), status, String(value));
});
