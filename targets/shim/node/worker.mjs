// Workers entry of a Node mcp-deploy artifact: bundled by esbuild into `worker.mjs`, the main
// module of a module Worker (workerd / Cloudflare). The JavaScript twin of
// targets/workers/shim/entry.py.
//
// For each request:
// 1. the gate (gate.mjs), made once per `env` (the Worker's bindings) with the token secret
//    binding `auth.token_env`: refusals are byte-identical to the other targets'; a bearer
//    Worker whose token secret is missing, empty or holds a comma answers 500 (the Python
//    Worker shim's "server misconfigured" answer) except on the health path, which is always
//    open. The public base URL is the `MCP_DEPLOY_PUBLIC_URL` binding when set (the local
//    emulation sets it to its loopback URL), else `new URL(request.url).origin` (workers.dev
//    or the custom domain). In mode oauth one token verifier serves the isolate (its key
//    cache outlives requests); its fetches go to the issuer over the Worker's outbound
//    network;
// 2. on the first request of an isolate, the string bindings the server reads as environment
//    variables (its declared secrets, plus the names the deployment lists in the
//    `MCP_DEPLOY_ENV_NAMES` binding, a JSON array) are copied into `process.env` when the
//    runtime has one (nodejs_compat), then the server module (`mcp-deploy:app`, the spec's
//    server.entry) is imported: the same code reading process.env works on every target;
// 3. `app.fetch(request, env, ctx)` answers (the request without its Origin header).
//
// Standard Web APIs only: this module, gate.mjs and oauth.mjs import nothing from node:*.
// MCP_DEPLOY_CONFIG is replaced at build time by a string of the runtime config's JSON (path,
// health_path, auth {mode, token_env, ...}, secrets): no environment config, no secret values.
// `mcp-deploy:oauth` is oauth.mjs in an oauth bundle, no-oauth.mjs in any other.

import { makeOAuth } from "mcp-deploy:oauth";
import { makeGate, pathOf, publicBase } from "./gate.mjs";

const CONFIG = JSON.parse(MCP_DEPLOY_CONFIG);
const ENV_NAMES_BINDING = "MCP_DEPLOY_ENV_NAMES";
const PUBLIC_URL_BINDING = "MCP_DEPLOY_PUBLIC_URL";
const OAUTH = makeOAuth?.(CONFIG.auth, CONFIG.path) ?? null; // one per isolate

const gates = new WeakMap();
let loading = null;

/** The Python Worker shim's 500 for a bearer Worker without a usable token secret. */
function misconfigured(env) {
  const name = CONFIG.auth.token_env;
  const token = env == null ? undefined : env[name];
  const hint =
    typeof token === "string" && token !== ""
      ? `the secret ${name} contains a comma, which a bearer token cannot (RFC 6750)`
      : `the secret ${name} is not set`;
  const body = `{"error": "server misconfigured", "hint": ${JSON.stringify(hint)}}`;
  return new Response(body, { status: 500, headers: { "content-type": "application/json" } });
}

/** The gate for these bindings (a Response when it cannot be made: misconfigured). */
function gateFor(env) {
  const key = env ?? gates;
  let gate = gates.get(key);
  if (gate === undefined) {
    try {
      gate = makeGate(CONFIG.auth, env, {
        health_path: CONFIG.health_path,
        oauth: OAUTH,
      });
    } catch {
      return misconfigured(env);
    }
    gates.set(key, gate);
  }
  return gate;
}

/** Copy the string bindings the server reads as environment variables into process.env. */
function exportBindings(env) {
  const target = globalThis.process?.env;
  if (target == null || typeof target !== "object" || env == null) return;
  let listed = [];
  if (typeof env[ENV_NAMES_BINDING] === "string") {
    try {
      const parsed = JSON.parse(env[ENV_NAMES_BINDING]);
      if (Array.isArray(parsed)) listed = parsed.filter((name) => typeof name === "string");
    } catch {
      listed = [];
    }
  }
  for (const name of [...(CONFIG.secrets ?? []), ...listed]) {
    if (typeof env[name] === "string") target[name] = env[name];
  }
}

async function loadApp(env) {
  exportBindings(env);
  const { default: app } = await import("mcp-deploy:app");
  if (app == null || typeof app.fetch !== "function") {
    throw new TypeError(
      "mcp-deploy: the default export of server.entry must be a fetch handler " +
        "({ fetch(request, env, ctx) })",
    );
  }
  return app;
}

export default {
  /** Authorise, then serve the request with the server's fetch handler. */
  async fetch(request, env, ctx) {
    const health = CONFIG.health_path != null && pathOf(request) === CONFIG.health_path;
    if (!health) {
      const gate = gateFor(env);
      if (gate instanceof Response) return gate;
      const configured = env == null ? undefined : env[PUBLIC_URL_BINDING];
      const passed = await gate(request, publicBase(configured, request.url));
      if (passed instanceof Response) return passed;
      request = passed;
    }
    loading ??= loadApp(env);
    const app = await loading;
    return app.fetch(request, env, ctx);
  },
};
