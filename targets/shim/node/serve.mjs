// Container entry of a Node mcp-deploy image: bundled by esbuild into `server.mjs`, run as
// `node /app/server.mjs`. The Node twin of targets/cloudrun/shim/mcp_deploy_serve.py.
//
// Cloud Run's contract: listen on `$PORT` (8080 by default) on all interfaces
// (`MCP_DEPLOY_HOST` overrides the bind address: the local emulation binds 127.0.0.1), and
// stop within the grace period after SIGTERM: stop accepting connections, let in-flight
// requests finish for up to GRACE_SECONDS, then exit 0 (SIGINT does the same).
//
// Start-up, in this order:
// 1. with `MCP_DEPLOY_SECRETS_STDIN=1` (the local emulation), the first line of stdin is a JSON
//    object NAME -> secret value, set in process.env; stdin is then closed (in the cloud,
//    Cloud Run sets secret environment variables itself);
// 2. the auth gate is made (bearer without a token secret: exit 1, fail closed);
// 3. the server module (`mcp-deploy:app`, the spec's server.entry) is imported dynamically,
//    so its top level runs after the secrets are in process.env. Its default export must be
//    a fetch handler `{ fetch(request, env, ctx) }`.
//
// Each request becomes a Request (streamed body, every Authorization header: repeated ones
// reach the gate joined with commas and are refused with 400), passes the gate (gate.mjs;
// the public base URL is `MCP_DEPLOY_PUBLIC_URL` when set, which the local emulation does,
// else `<X-Forwarded-Proto, or https>://<Host>` as Cloud Run's front end delivers), goes to
// `app.fetch(request, process.env)`, and the Response is streamed back as the app produces
// it (see http.mjs). A failure before the response starts is a 500.
//
// MCP_DEPLOY_CONFIG is replaced at build time by a string of the runtime config's JSON (path,
// health_path, auth {mode, token_env, ...}, secrets): no environment config, no secret values.
// `mcp-deploy:oauth` is oauth.mjs in an oauth bundle, no-oauth.mjs in any other.

import http from "node:http";
import { makeOAuth } from "mcp-deploy:oauth";
import { makeGate, publicBase } from "./gate.mjs";
import { requestFromIncoming, writeResponse } from "./http.mjs";

const CONFIG = JSON.parse(MCP_DEPLOY_CONFIG);
const GRACE_SECONDS = 8; // Cloud Run sends SIGKILL 10 s after SIGTERM
const BAD_HOST_BODY = '{"error": "invalid_request", "hint": "send a valid Host header"}';

/** The first line of stdin (without its newline); stdin is closed afterwards. */
function firstStdinLine() {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let text = "";
    const settle = (error, line) => {
      stdin.off("data", onData);
      stdin.off("end", onEnd);
      stdin.off("error", onError);
      stdin.destroy();
      if (error) reject(error);
      else resolve(line);
    };
    const onData = (chunk) => {
      text += chunk;
      const end = text.indexOf("\n");
      if (end >= 0) settle(null, text.slice(0, end));
    };
    const onEnd = () => settle(null, text);
    const onError = (error) => settle(error);
    stdin.setEncoding("utf8");
    stdin.on("data", onData);
    stdin.once("end", onEnd);
    stdin.once("error", onError);
  });
}

/** Set the secrets handed over on stdin (local emulation only). */
async function loadSecretsFromStdin() {
  if (process.env.MCP_DEPLOY_SECRETS_STDIN !== "1") return;
  const line = (await firstStdinLine()).trim();
  const values = JSON.parse(line || "{}");
  if (values === null || typeof values !== "object" || Array.isArray(values)) {
    throw new Error("the secrets on stdin are not a JSON object NAME -> value");
  }
  for (const [name, value] of Object.entries(values)) {
    if (typeof value !== "string") throw new Error(`the secret ${name} on stdin is not a string`);
    process.env[name] = value;
  }
}

let gate;
let app;
try {
  await loadSecretsFromStdin();
  const oauth = makeOAuth?.(CONFIG.auth, CONFIG.path) ?? null;
  gate = makeGate(CONFIG.auth, process.env, { health_path: CONFIG.health_path, oauth });
  ({ default: app } = await import("mcp-deploy:app"));
  if (app == null || typeof app.fetch !== "function") {
    throw new TypeError(
      "the default export of server.entry must be a fetch handler ({ fetch(request, env, ctx) })",
    );
  }
} catch (error) {
  process.stderr.write(`mcp-deploy: cannot start the server: ${error?.stack ?? error}\n`);
  process.exit(1);
}

const inFlight = new Set();

/** Cloud Run's view of the public base URL: `<X-Forwarded-Proto, or https>://<Host>`. */
function platformBase(req) {
  const forwarded = String(req.headers["x-forwarded-proto"] ?? "").split(",")[0].trim();
  return `${forwarded === "http" ? "http" : "https"}://${req.headers.host}`;
}

function plainAnswer(res, status, headers, body) {
  res.writeHead(status, headers);
  res.end(body);
}

async function handle(req, res) {
  const controller = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) controller.abort(new Error("the client went away"));
  });
  let request;
  try {
    request = requestFromIncoming(req, controller.signal);
  } catch {
    request = null;
  }
  if (request === null) {
    plainAnswer(res, 400, { "content-type": "application/json" }, BAD_HOST_BODY);
    return;
  }
  const base = publicBase(process.env.MCP_DEPLOY_PUBLIC_URL, platformBase(req));
  const passed = await gate(request, base);
  const response = passed instanceof Response ? passed : await app.fetch(passed, process.env);
  if (!(response instanceof Response)) {
    throw new TypeError("the server's fetch handler did not return a Response");
  }
  await writeResponse(res, response, { head: request.method === "HEAD" });
}

const server = http.createServer((req, res) => {
  const done = handle(req, res)
    .catch((error) => {
      process.stderr.write(`mcp-deploy: request failed: ${error?.stack ?? error}\n`);
      if (!res.headersSent) {
        plainAnswer(
          res,
          500,
          { "content-type": "text/plain; charset=utf-8" },
          "Internal Server Error",
        );
      } else {
        res.destroy();
      }
    })
    .finally(() => {
      inFlight.delete(done);
      if (stopping && inFlight.size === 0) finish();
    });
  inFlight.add(done);
});

let stopping = false;

function finish() {
  server.closeAllConnections();
  process.exit(0);
}

/** Stop accepting, let in-flight requests finish (GRACE_SECONDS at most), exit 0. */
function stop() {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeIdleConnections();
  if (inFlight.size === 0) finish();
  setTimeout(finish, GRACE_SECONDS * 1000).unref();
}

process.on("SIGTERM", stop);
process.on("SIGINT", stop);

const host = process.env.MCP_DEPLOY_HOST || "0.0.0.0";
const port = Number.parseInt(process.env.PORT || "8080", 10);
server.on("error", (error) => {
  process.stderr.write(`mcp-deploy: cannot listen on ${host}:${port}: ${error.message}\n`);
  process.exit(1);
});
server.listen(port, host, () => {
  process.stderr.write(`mcp-deploy: serving on http://${host}:${port}\n`);
});
