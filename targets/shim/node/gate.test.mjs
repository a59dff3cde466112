// Tests of gate.mjs and oauth.mjs (run: node --test targets/shim/node/). The Python side
// (tests/integration/test_node_shims.py) checks the same answers against mcp_deploy_gate.py.
//
// oauth.mjs imports `jose`, which the bundler links from mcp-deploy's cache; here a resolve
// hook points `jose` at the same install (cache_root()/npm-tools/jose@<JOSE_VERSION>, the
// version pinned in orchestrator/build/esbuild.py), installed with npm when missing. Tokens
// are signed with keys made here with WebCrypto and published by a JWKS server on 127.0.0.1.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { register } from "node:module";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  AMBIGUOUS_BODY,
  FORBIDDEN_ORIGIN_BODY,
  REFUSALS,
  UNAUTHORIZED_BODY,
  bearerToken,
  judgeBearer,
  makeGate,
  originAllowed,
  publicBase,
  pyDumps,
} from "./gate.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The pinned jose version, as orchestrator/build/esbuild.py says. */
function joseVersion() {
  const source = readFileSync(join(HERE, "../../../orchestrator/build/esbuild.py"), "utf8");
  const found = /^JOSE_VERSION = "([^"]+)"/m.exec(source);
  assert.ok(found, "JOSE_VERSION not found in orchestrator/build/esbuild.py");
  return found[1];
}

/** The jose package directory in mcp-deploy's cache (as npm_tool installs it), installed now
 * with npm when missing. */
function joseDirectory() {
  const version = joseVersion();
  const cache = process.env.MCP_DEPLOY_CACHE_DIR ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "mcp-deploy");
  const prefix = join(cache, "npm-tools", `jose@${version}`);
  const directory = join(prefix, "node_modules", "jose");
  if (!existsSync(join(directory, "package.json"))) {
    mkdirSync(dirname(prefix), { recursive: true });
    const work = mkdtempSync(join(dirname(prefix), ".install-"));
    try {
      writeFileSync(join(work, "package.json"),
        JSON.stringify({ private: true, allowScripts: { [`jose@${version}`]: true } }, null, 2) + "\n");
      execFileSync("npm", ["install", "--no-audit", "--no-fund", "--no-update-notifier",
        "--save-exact", "--prefix", work, `jose@${version}`], { stdio: "ignore" });
      if (!existsSync(prefix)) renameSync(work, prefix);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return directory;
}

const HOOKS = `
let target;
export async function initialize(data) { target = data.jose; }
export async function resolve(specifier, context, next) {
  return specifier === "jose" ? { url: target, shortCircuit: true } : next(specifier, context);
}`;

register(`data:text/javascript,${encodeURIComponent(HOOKS)}`, {
  data: { jose: pathToFileURL(join(joseDirectory(), "dist", "webapi", "index.js")).href },
});
const { UNAVAILABLE_BODY, discoveryUrls, grantedScopes, makeOAuth, makeVerifier } = await import(
  "./oauth.mjs"
);

const BASE = "https://example.test";
const AUTH = { mode: "bearer", token_env: "TOKEN" };
const OPTIONS = { health_path: "/health", mcp_path: "/mcp" };
const ENV = { TOKEN: "s3cret-token" };

function post(path, ...authorization) {
  const headers = new Headers();
  for (const value of authorization) headers.append("authorization", value);
  return new Request(`${BASE}${path}`, { method: "POST", headers, body: "{}" });
}

function withHeaders(path, headers, method = "POST") {
  const body = method === "GET" || method === "HEAD" ? undefined : "{}";
  return new Request(`${BASE}${path}`, { method, headers, body });
}

async function answer(response) {
  return [response.status, Object.fromEntries(response.headers), await response.text()];
}

// ---------------------------------------------------------------- bearer, none, iam

test("refusal bodies are Python's json.dumps output", () => {
  assert.equal(UNAUTHORIZED_BODY, '{"error": "unauthorized", "hint": "send Authorization: Bearer <token>"}');
  assert.equal(
    AMBIGUOUS_BODY,
    '{"error": "invalid_request", "hint": "send exactly one Authorization header, with one bearer token"}',
  );
  assert.deepEqual(Object.keys(REFUSALS), ["400", "401"]);
  assert.equal(pyDumps({ a: [1, null, "é\u007f😀"], b: { c: "\"\\\n" } }),
    '{"a": [1, null, "\\u00e9\\u007f\\ud83d\\ude00"], "b": {"c": "\\"\\\\\\n"}}');
});

test("none and iam let everything through", async () => {
  for (const mode of ["none", "iam"]) {
    const gate = makeGate({ mode, token_env: "TOKEN" }, {}, { health_path: null });
    const request = post("/mcp");
    assert.equal(await gate(request, BASE), request);
  }
});

test("bearer: the right token passes, in any scheme case and with extra spaces", async () => {
  const gate = makeGate(AUTH, ENV, OPTIONS);
  for (const value of ["Bearer s3cret-token", "bearer s3cret-token", "Bearer  s3cret-token"]) {
    assert.ok((await gate(post("/mcp", value), BASE)) instanceof Request, value);
  }
});

test("bearer: missing, wrong or other-scheme credentials get 401 with the exact answer", async () => {
  const gate = makeGate(AUTH, ENV, OPTIONS);
  for (const request of [post("/mcp"), post("/mcp", "Bearer nope"), post("/mcp", "Basic s3cret-token")]) {
    const refused = await gate(request, BASE);
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get("www-authenticate"), 'Bearer realm="mcp"');
    assert.equal(refused.headers.get("content-type"), "application/json");
    assert.equal(await refused.text(), UNAUTHORIZED_BODY);
  }
});

test("bearer: repeated or comma-joined Authorization values get 400", async () => {
  const gate = makeGate(AUTH, ENV, OPTIONS);
  for (const request of [
    post("/mcp", "Bearer s3cret-token", "Bearer s3cret-token"),
    post("/mcp", "Bearer s3cret-token,Bearer other"),
  ]) {
    const refused = await gate(request, BASE);
    assert.equal(refused.status, 400);
    assert.equal(refused.headers.get("www-authenticate"), 'Bearer realm="mcp", error="invalid_request"');
    assert.equal(await refused.text(), AMBIGUOUS_BODY);
  }
});

test("bearer: the health path is open, other paths are not", async () => {
  const gate = makeGate(AUTH, ENV, OPTIONS);
  assert.ok((await gate(post("/health"), BASE)) instanceof Request);
  assert.equal((await gate(post("/health/"), BASE)).status, 401);
  const noHealth = makeGate(AUTH, ENV, { ...OPTIONS, health_path: null });
  assert.equal((await noHealth(post("/health"), BASE)).status, 401);
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

// ---------------------------------------------------------------- public base URL, Origin

test("publicBase prefers MCP_DEPLOY_PUBLIC_URL and keeps only the origin", () => {
  assert.equal(publicBase("http://127.0.0.1:8123/", "https://x.run.app/mcp"), "http://127.0.0.1:8123");
  assert.equal(publicBase(undefined, "https://X.Lambda-URL.eu-west-1.on.aws/mcp?a=1"),
    "https://x.lambda-url.eu-west-1.on.aws");
  assert.equal(publicBase("", "https://w.workers.dev:443"), "https://w.workers.dev");
  assert.equal(publicBase("not a url", "https://a.test"), "https://a.test");
  assert.throws(() => publicBase(undefined, "ftp://a.test"), /no public base URL/);
});

test("originAllowed: none, own (any case), listed; null and foreign refused", () => {
  assert.equal(originAllowed(null, BASE), true);
  assert.equal(originAllowed("https://EXAMPLE.test", BASE), true);
  assert.equal(originAllowed("https://example.test:8443", BASE), false);
  assert.equal(originAllowed("http://example.test", BASE), false);
  assert.equal(originAllowed("https://evil.test", BASE), false);
  assert.equal(originAllowed("null", BASE), false);
  assert.equal(originAllowed("null", BASE, ["null"]), true);
  assert.equal(originAllowed("https://App.test", BASE, ["https://app.TEST/"]), true);
  assert.equal(originAllowed("https://example.test/", BASE), true);
});

test("a foreign Origin gets 403 in every mode, before credentials; health stays open", async () => {
  const auths = [
    [{ mode: "none", token_env: "T" }, {}],
    [{ mode: "iam", token_env: "T" }, {}],
    [AUTH, ENV],
  ];
  for (const [auth, env] of auths) {
    const gate = makeGate(auth, env, OPTIONS);
    const refused = await gate(withHeaders("/mcp", { origin: "https://evil.test" }), BASE);
    assert.deepEqual(await answer(refused), [403, { "content-type": "application/json" }, FORBIDDEN_ORIGIN_BODY]);
    const health = await gate(withHeaders("/health", { origin: "https://evil.test" }), BASE);
    assert.ok(health instanceof Request);
  }
  assert.equal(
    FORBIDDEN_ORIGIN_BODY,
    '{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "Forbidden: the Origin is not allowed"}}',
  );
});

test("an allowed Origin passes and is removed; the body is handed over", async () => {
  const gate = makeGate({ ...AUTH, allowed_origins: ["https://app.test"] }, ENV, OPTIONS);
  for (const origin of ["https://example.test", "https://app.test"]) {
    const request = withHeaders("/mcp", { origin, authorization: "Bearer s3cret-token" });
    const passed = await gate(request, BASE);
    assert.ok(passed instanceof Request);
    assert.equal(passed.headers.get("origin"), null);
    assert.equal(passed.headers.get("authorization"), "Bearer s3cret-token");
    assert.equal(passed.url, `${BASE}/mcp`);
    assert.equal(await passed.text(), "{}");
  }
});

// ---------------------------------------------------------------- oauth, with a fake verifier

const OAUTH = Object.freeze({
  mode: "oauth",
  token_env: "MCP_AUTH_TOKEN",
  issuer: "https://idp.test",
  audience: null,
  scopes: ["mcp:tools", "mcp:read"],
  algorithms: ["ES256", "RS256"],
  jwks_uri: null,
  audience_claim: "aud",
  scope_claim: "scope",
});
const METADATA = `${BASE}/.well-known/oauth-protected-resource/mcp`;

/** A verifier answering `outcome` and remembering what it was asked. */
function fakeVerifier(outcome) {
  const asked = [];
  return {
    asked,
    async verify(token, audience) {
      asked.push([token, audience]);
      return typeof outcome === "function" ? outcome(token) : outcome;
    },
  };
}

/** The gate for oauth `auth` with `verifier`. */
function oauthGate(auth, verifier) {
  return makeGate(auth, {}, { ...OPTIONS, oauth: makeOAuth(auth, "/mcp", { verifier }) });
}

test("oauth without its part of the gate fails at creation", () => {
  assert.throws(() => makeGate(OAUTH, {}, OPTIONS), /no token verifier/);
});

test("oauth: the metadata at the root and path-suffixed well-known URLs", async () => {
  const gate = oauthGate(OAUTH, fakeVerifier({ status: 401 }));
  for (const path of ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]) {
    const [status, headers, body] = await answer(
      await gate(withHeaders(path, { origin: "https://evil.test" }, "GET"), BASE),
    );
    assert.equal(status, 200);
    assert.deepEqual(headers, {
      "access-control-allow-origin": "*",
      "cache-control": "public, max-age=300",
      "content-type": "application/json",
    });
    assert.deepEqual(JSON.parse(body), {
      resource: `${BASE}/mcp`,
      authorization_servers: ["https://idp.test"],
      bearer_methods_supported: ["header"],
      scopes_supported: ["mcp:tools", "mcp:read"],
    });
    const head = await gate(withHeaders(path, {}, "HEAD"), BASE);
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    assert.deepEqual(await answer(await gate(withHeaders(path, {}, "OPTIONS"), BASE)), [
      204,
      {
        "access-control-allow-headers": "*",
        "access-control-allow-methods": "GET, HEAD, OPTIONS",
        "access-control-allow-origin": "*",
      },
      "",
    ]);
    assert.deepEqual(await answer(await gate(withHeaders(path, {}, "POST"), BASE)), [
      405,
      { allow: "GET, HEAD, OPTIONS", "content-type": "application/json" },
      '{"error": "method not allowed"}',
    ]);
  }
  const other = await gate(withHeaders("/.well-known/oauth-protected-resource/other", {}, "GET"), BASE);
  assert.equal(other.status, 401);
});

test("oauth: the metadata names an absolute audience as the resource, and no empty scopes", async () => {
  const auth = { ...OAUTH, audience: "https://api.test/mcp", scopes: [] };
  const gate = oauthGate(auth, fakeVerifier({ status: 401 }));
  const body = await (await gate(withHeaders("/.well-known/oauth-protected-resource", {}, "GET"), BASE)).json();
  assert.deepEqual(body, {
    resource: "https://api.test/mcp",
    authorization_servers: ["https://idp.test"],
    bearer_methods_supported: ["header"],
  });
});

test("bearer serves no metadata", async () => {
  const gate = makeGate(AUTH, ENV, OPTIONS);
  const refused = await gate(withHeaders("/.well-known/oauth-protected-resource", {}, "GET"), BASE);
  assert.equal(refused.status, 401);
});

test("oauth: no token, or another scheme: 401 with the challenge", async () => {
  const verifier = fakeVerifier({ status: 200, payload: {} });
  const gate = oauthGate(OAUTH, verifier);
  for (const request of [post("/mcp"), post("/mcp", "Basic abc"), post("/mcp", "Bearer "), post("/mcp", "Bearer")]) {
    assert.deepEqual(await answer(await gate(request, BASE)), [
      401,
      {
        "content-type": "application/json",
        "www-authenticate": `Bearer resource_metadata="${METADATA}", scope="mcp:tools mcp:read"`,
      },
      '{"error": "unauthorized", "hint": "send Authorization: Bearer <an access token from https://idp.test>"}',
    ]);
  }
  const noScopes = oauthGate({ ...OAUTH, scopes: [] }, verifier);
  const refused = await noScopes(post("/mcp"), BASE);
  assert.equal(refused.headers.get("www-authenticate"), `Bearer resource_metadata="${METADATA}"`);
  assert.deepEqual(verifier.asked, []);
});

test("oauth: repeated Authorization values get bearer's 400", async () => {
  const gate = oauthGate(OAUTH, fakeVerifier({ status: 200, payload: {} }));
  const refused = await gate(post("/mcp", "Bearer a", "Bearer b"), BASE);
  assert.deepEqual(await answer(refused), [400, { ...REFUSALS[400].headers }, AMBIGUOUS_BODY]);
});

test("oauth: an invalid token: 401 invalid_token with the verifier's hint", async () => {
  const verifier = fakeVerifier({ status: 401, hint: "the token has expired" });
  const gate = oauthGate(OAUTH, verifier);
  assert.deepEqual(await answer(await gate(post("/mcp", "Bearer abc.def.ghi"), BASE)), [
    401,
    {
      "content-type": "application/json",
      "www-authenticate":
        `Bearer error="invalid_token", resource_metadata="${METADATA}", scope="mcp:tools mcp:read"`,
    },
    '{"error": "invalid_token", "hint": "the token has expired"}',
  ]);
  assert.deepEqual(verifier.asked, [["abc.def.ghi", `${BASE}/mcp`]]);
});

test("oauth: the expected audience is the configured one, else the resource", async () => {
  const verifier = fakeVerifier({ status: 401, hint: "x" });
  for (const [audience, expected] of [[null, `${BASE}/mcp`], ["api://mcp", "api://mcp"], ["https://a.test/x", "https://a.test/x"]]) {
    const gate = oauthGate({ ...OAUTH, audience }, verifier);
    await gate(post("/mcp", "Bearer t"), BASE);
    assert.equal(verifier.asked.at(-1)[1], expected);
  }
});

test("oauth: too few scopes: 403 insufficient_scope naming what is missing", async () => {
  const verifier = fakeVerifier({ status: 200, payload: { scope: "mcp:read other" } });
  const gate = oauthGate(OAUTH, verifier);
  assert.deepEqual(await answer(await gate(post("/mcp", "Bearer t"), BASE)), [
    403,
    {
      "content-type": "application/json",
      "www-authenticate":
        `Bearer error="insufficient_scope", scope="mcp:tools mcp:read", resource_metadata="${METADATA}"`,
    },
    '{"error": "insufficient_scope", "hint": "the token lacks: mcp:tools"}',
  ]);
});

test("oauth: keys that cannot be fetched: 503", async () => {
  const gate = oauthGate(OAUTH, fakeVerifier({ status: 503 }));
  assert.deepEqual(await answer(await gate(post("/mcp", "Bearer t"), BASE)), [
    503,
    { "content-type": "application/json" },
    UNAVAILABLE_BODY,
  ]);
  assert.equal(UNAVAILABLE_BODY, '{"error": "temporarily_unavailable", "hint": "the issuer\'s keys cannot be fetched"}');
});

test("oauth: a valid token passes with the Authorization header unchanged", async () => {
  const verifier = fakeVerifier({ status: 200, payload: { scope: "mcp:read mcp:tools" } });
  const gate = oauthGate(OAUTH, verifier);
  const passed = await gate(withHeaders("/mcp", { authorization: "bearer  t ", origin: BASE }), BASE);
  assert.ok(passed instanceof Request);
  assert.equal(passed.headers.get("authorization"), "bearer  t");
  assert.equal(passed.headers.get("origin"), null);
  assert.deepEqual(verifier.asked, [["t", `${BASE}/mcp`]]);
});

test("grantedScopes reads scope strings and scp arrays or strings", () => {
  assert.deepEqual([...grantedScopes({ scope: "a  b" }, "scope")], ["a", "b"]);
  assert.deepEqual([...grantedScopes({ scope: ["a"] }, "scope")], []);
  assert.deepEqual([...grantedScopes({ scp: ["a", 1, "b"] }, "scp")], ["a", "b"]);
  assert.deepEqual([...grantedScopes({ scp: "a b" }, "scp")], ["a", "b"]);
  assert.deepEqual([...grantedScopes({}, "scope")], []);
});

// ---------------------------------------------------------------- oauth.mjs with real keys

const encode = (text) => new TextEncoder().encode(text);
const b64 = (data) => Buffer.from(typeof data === "string" ? encode(data) : data).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

async function newKey(alg, kid) {
  const params = alg === "ES256"
    ? { name: "ECDSA", namedCurve: "P-256" }
    : { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" };
  const pair = await crypto.subtle.generateKey(params, true, ["sign", "verify"]);
  const { kty, crv, x, y, n, e } = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const jwk = Object.fromEntries(Object.entries({ kty, crv, x, y, n, e, kid, alg, use: "sig" })
    .filter(([, value]) => value !== undefined));
  return { alg, kid, privateKey: pair.privateKey, jwk };
}

async function sign(key, claims, header = {}) {
  const protectedHeader = { alg: key.alg, typ: "at+jwt", kid: key.kid, ...header };
  const input = `${b64(JSON.stringify(protectedHeader))}.${b64(JSON.stringify(claims))}`;
  const algorithm = key.alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5" };
  const signature = await crypto.subtle.sign(algorithm, key.privateKey, encode(input));
  return `${input}.${b64(new Uint8Array(signature))}`;
}

/** An issuer on 127.0.0.1: its metadata (OpenID, or RFC 8414 only) and its JWKS. */
class Issuer {
  constructor() {
    this.keys = [];
    this.hits = { discovery: 0, jwks: 0 };
    this.jwksStatus = 200;
    this.style = "oidc"; // "oidc" | "rfc8414" | "other-issuer"
    this.path = "";
    this.server = http.createServer((req, res) => this.answer(req, res));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.origin = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  get issuer() {
    return this.origin + this.path;
  }

  get jwksUri() {
    return `${this.origin}/keys`;
  }

  answer(req, res) {
    const json = (status, body) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const document = () => {
      this.hits.discovery++;
      const issuer = this.style === "other-issuer" ? `${this.issuer}/other` : this.issuer;
      json(200, { issuer, jwks_uri: this.jwksUri });
    };
    if (req.url === `${this.path}/.well-known/openid-configuration` && this.style !== "rfc8414") return document();
    if (req.url === `/.well-known/oauth-authorization-server${this.path}` && this.style === "rfc8414") return document();
    if (req.url === "/keys") {
      this.hits.jwks++;
      return json(this.jwksStatus, { keys: this.keys.map((key) => key.jwk) });
    }
    json(404, { error: "not found" });
  }

  stop() {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

describe("oauth.mjs verifies real tokens against a JWKS on 127.0.0.1", () => {
  const AUDIENCE = "http://127.0.0.1:9/mcp";
  let idp;
  let es;
  let rs;
  let auth;

  before(async () => {
    idp = await new Issuer().start();
    es = await newKey("ES256", "es-1");
    rs = await newKey("RS256", "rs-1");
    idp.keys = [es, rs];
    auth = { ...OAUTH, issuer: idp.issuer };
  });

  after(() => idp.stop());

  const claims = (extra = {}) => ({
    iss: idp.issuer, aud: AUDIENCE, exp: now() + 300, iat: now(), scope: "mcp:tools", client_id: "c1", ...extra,
  });

  test("discovery URLs: OpenID's, then RFC 8414's", () => {
    assert.deepEqual(discoveryUrls("https://a.test/tenant/"), [
      "https://a.test/tenant/.well-known/openid-configuration",
      "https://a.test/.well-known/oauth-authorization-server/tenant",
    ]);
    assert.deepEqual(discoveryUrls("http://127.0.0.1:5"), [
      "http://127.0.0.1:5/.well-known/openid-configuration",
      "http://127.0.0.1:5/.well-known/oauth-authorization-server",
    ]);
  });

  test("valid ES256 and RS256 tokens pass (keys discovered once, cached)", async () => {
    idp.hits = { discovery: 0, jwks: 0 };
    const verifier = makeVerifier(auth);
    for (const key of [es, rs, es]) {
      const outcome = await verifier.verify(await sign(key, claims()), AUDIENCE);
      assert.equal(outcome.status, 200, JSON.stringify(outcome));
      assert.equal(outcome.payload.scope, "mcp:tools");
    }
    assert.deepEqual(idp.hits, { discovery: 1, jwks: 1 });
  });

  test("aud may be an array; a token for another audience is refused", async () => {
    const verifier = makeVerifier(auth);
    assert.equal((await verifier.verify(await sign(es, claims({ aud: ["x", AUDIENCE] })), AUDIENCE)).status, 200);
    assert.deepEqual(await verifier.verify(await sign(es, claims({ aud: "http://127.0.0.1:9/other" })), AUDIENCE),
      { status: 401, hint: "the token's audience is not http://127.0.0.1:9/mcp" });
  });

  test("expired, not yet valid, no exp, other issuer: 401 (no leeway)", async () => {
    const verifier = makeVerifier(auth);
    const cases = [
      [claims({ exp: now() - 1 }), "the token has expired"],
      [claims({ exp: now() }), "the token has expired"],
      [claims({ nbf: now() + 2 }), "the token is not valid yet (nbf)"],
      [claims({ exp: undefined }), "the token has no exp claim"],
      [claims({ iss: `${idp.issuer}/x` }), `the token's issuer is not ${idp.issuer}`],
    ];
    for (const [payload, hint] of cases) {
      assert.deepEqual(await verifier.verify(await sign(es, payload), AUDIENCE), { status: 401, hint });
    }
    assert.equal((await verifier.verify(await sign(es, claims({ nbf: now() })), AUDIENCE)).status, 200);
  });

  test("a wrong signature, alg none, HS256, garbage: 401", async () => {
    const NOT_ALLOWED = "the token's algorithm is not allowed (allowed: ES256, RS256)";
    const verifier = makeVerifier(auth);
    const good = await sign(es, claims());
    const [header, payload, signature] = good.split(".");
    const other = await newKey("ES256", "es-1"); // same kid, another key
    const forged = await sign(other, claims());
    const tampered = `${header}.${b64(JSON.stringify(claims({ scope: "admin" })))}.${signature}`;
    const none = `${b64(JSON.stringify({ alg: "none", typ: "JWT" }))}.${payload}.`;
    const hs = `${b64(JSON.stringify({ alg: "HS256", kid: "es-1" }))}.${payload}.${signature}`;
    const cases = [
      [forged, "the token's signature is invalid"],
      [tampered, "the token's signature is invalid"],
      [none, NOT_ALLOWED],
      [hs, NOT_ALLOWED],
      ["not-a-jwt", "the token is not a signed JWT"],
      [`${header}.${b64("not json")}.${signature}`, "the token's signature is invalid"],
    ];
    for (const [token, hint] of cases) {
      assert.deepEqual(await verifier.verify(token, AUDIENCE), { status: 401, hint }, token);
    }
    const allowsNone = makeVerifier({ ...auth, algorithms: ["none", "HS256", "ES256"] });
    assert.deepEqual(await allowsNone.verify(none, AUDIENCE),
      { status: 401, hint: "the token's algorithm is not allowed (allowed: ES256)" });
    assert.deepEqual(await verifier.verify("x".repeat(16 * 1024 + 1), AUDIENCE),
      { status: 401, hint: "the token is too long" });
  });

  test("an algorithm outside the allow-list is refused before any key is fetched", async () => {
    idp.hits = { discovery: 0, jwks: 0 };
    const verifier = makeVerifier({ ...auth, algorithms: ["ES256"] });
    assert.deepEqual(await verifier.verify(await sign(rs, claims()), AUDIENCE),
      { status: 401, hint: "the token's algorithm is not allowed (allowed: ES256)" });
    assert.deepEqual(idp.hits, { discovery: 0, jwks: 0 });
  });

  test("without kid: the one usable key, else refused", async () => {
    const verifier = makeVerifier(auth);
    assert.equal((await verifier.verify(await sign(es, claims(), { kid: undefined }), AUDIENCE)).status, 200);
    const second = await newKey("ES256", "es-2");
    const withTwo = new Issuer();
    withTwo.keys = [es, second];
    await withTwo.start();
    try {
      const two = makeVerifier({ ...auth, issuer: withTwo.issuer });
      assert.deepEqual(await two.verify(await sign(es, claims({ iss: withTwo.issuer }), { kid: undefined }), AUDIENCE),
        { status: 401, hint: "the token names no key (kid) and the issuer has not exactly one" });
    } finally {
      await withTwo.stop();
    }
  });

  test("an unknown kid refetches the keys once (rotation), not within the cooldown", async () => {
    const rotating = new Issuer();
    const first = await newKey("ES256", "k1");
    rotating.keys = [first];
    await rotating.start();
    try {
      const a = { ...auth, issuer: rotating.issuer, jwks_uri: rotating.jwksUri };
      const base = { iss: rotating.issuer, aud: AUDIENCE, exp: now() + 300 };
      const verifier = makeVerifier(a, { jwks: { cooldownDuration: 200, cacheMaxAge: 600000, timeoutDuration: 5000 } });
      assert.equal((await verifier.verify(await sign(first, base), AUDIENCE)).status, 200);
      const next = await newKey("ES256", "k2");
      rotating.keys = [next];
      const rotated = await sign(next, base);
      assert.deepEqual(await verifier.verify(rotated, AUDIENCE),
        { status: 401, hint: "no key of the issuer matches the token's kid" }); // fetched < 200 ms ago
      assert.equal(rotating.hits.jwks, 1);
      await new Promise((resolve) => setTimeout(resolve, 250));
      assert.equal((await verifier.verify(rotated, AUDIENCE)).status, 200);
      assert.equal(rotating.hits.jwks, 2); // and the first token, verified before, is forgotten
      assert.equal(rotating.hits.discovery, 0); // jwks_uri given: no discovery
      assert.deepEqual(await verifier.verify(await sign(first, base), AUDIENCE),
        { status: 401, hint: "no key of the issuer matches the token's kid" });
    } finally {
      await rotating.stop();
    }
  });

  test("RFC 8414 metadata is the fallback; an issuer path is kept", async () => {
    const tenant = new Issuer();
    tenant.style = "rfc8414";
    tenant.path = "/tenant";
    tenant.keys = [es];
    await tenant.start();
    try {
      const verifier = makeVerifier({ ...auth, issuer: tenant.issuer });
      const outcome = await verifier.verify(await sign(es, claims({ iss: tenant.issuer })), AUDIENCE);
      assert.equal(outcome.status, 200);
      assert.deepEqual(tenant.hits, { discovery: 1, jwks: 1 });
    } finally {
      await tenant.stop();
    }
  });

  test("metadata of another issuer, failing keys, no issuer at all: 503", async () => {
    const liar = new Issuer();
    liar.style = "other-issuer";
    liar.keys = [es];
    await liar.start();
    const broken = new Issuer();
    broken.keys = [es];
    broken.jwksStatus = 500;
    await broken.start();
    try {
      for (const issuer of [liar, broken]) {
        const verifier = makeVerifier({ ...auth, issuer: issuer.issuer }, { discoveryRetry: 0 });
        const token = await sign(es, claims({ iss: issuer.issuer }));
        assert.deepEqual(await verifier.verify(token, AUDIENCE), { status: 503 });
      }
      const pausing = makeVerifier({ ...auth, issuer: broken.issuer });
      const brokenToken = await sign(es, claims({ iss: broken.issuer }));
      broken.hits = { discovery: 0, jwks: 0 };
      assert.deepEqual(await pausing.verify(brokenToken, AUDIENCE), { status: 503 });
      assert.deepEqual(await pausing.verify(brokenToken, AUDIENCE), { status: 503 });
      assert.deepEqual(broken.hits, { discovery: 1, jwks: 1 }); // no second try within 5 s
      const gone = "http://127.0.0.1:9";
      const verifier = makeVerifier({ ...auth, issuer: gone });
      const token = await sign(es, claims({ iss: gone }));
      assert.deepEqual(await verifier.verify(token, AUDIENCE), { status: 503 });
      assert.deepEqual(await verifier.verify(token, AUDIENCE), { status: 503 }); // within the retry pause
      assert.deepEqual(await verifier.verify("garbage", AUDIENCE),
        { status: 401, hint: "the token is not a signed JWT" }); // no key needed: no 503
    } finally {
      await liar.stop();
      await broken.stop();
    }
  });

  test("a verified token is remembered per audience, never past its exp", async () => {
    const verifier = makeVerifier(auth);
    const token = await sign(es, claims({ exp: now() + 2 }));
    assert.equal((await verifier.verify(token, AUDIENCE)).status, 200);
    idp.hits = { discovery: 0, jwks: 0 };
    idp.keys = [rs]; // the key is gone: the remembered verdict stands, no fetch
    try {
      assert.equal((await verifier.verify(token, AUDIENCE)).status, 200);
      assert.deepEqual(idp.hits, { discovery: 0, jwks: 0 });
      assert.deepEqual(await verifier.verify(token, "http://127.0.0.1:9/other"),
        { status: 401, hint: "the token's audience is not http://127.0.0.1:9/other" });
    } finally {
      idp.keys = [es, rs];
    }
    await new Promise((resolve) => setTimeout(resolve, (now() + 3) * 1000 - Date.now()));
    assert.deepEqual(await verifier.verify(token, AUDIENCE), { status: 401, hint: "the token has expired" });
  });

  test("audience_claim client_id: client_id must equal the audience", async () => {
    const verifier = makeVerifier({ ...auth, audience_claim: "client_id" });
    const token = await sign(es, claims({ aud: undefined, client_id: "app-client" }));
    assert.equal((await verifier.verify(token, "app-client")).status, 200);
    assert.deepEqual(await verifier.verify(token, "other-client"),
      { status: 401, hint: "the token's client_id is not other-client" });
  });

  test("the whole gate with the real verifier: 401, 403, pass", async () => {
    const strict = { ...auth, scopes: ["mcp:tools", "mcp:admin"] };
  const gate = makeGate(strict, {}, { ...OPTIONS, oauth: makeOAuth(strict, "/mcp") });
    const base = "http://127.0.0.1:9";
    const expired = await sign(es, claims({ exp: now() - 10 }));
    assert.equal((await gate(post("/mcp", `Bearer ${expired}`), base)).status, 401);
    const few = await gate(post("/mcp", `Bearer ${await sign(es, claims())}`), base);
    assert.equal(few.status, 403);
    assert.equal(await few.text(), '{"error": "insufficient_scope", "hint": "the token lacks: mcp:admin"}');
    const token = await sign(es, claims({ scope: "mcp:admin mcp:tools" }));
    const passed = await gate(post("/mcp", `Bearer ${token}`), base);
    assert.ok(passed instanceof Request);
    assert.equal(passed.headers.get("authorization"), `Bearer ${token}`);
  });
});
