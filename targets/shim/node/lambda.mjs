// Lambda entry of a Node mcp-deploy artifact: bundled by esbuild into `index.mjs`, handler
// `index.handler` (managed runtime nodejs20.x / nodejs22.x). The Node twin of
// targets/aws_lambda/shim/mcp_deploy_lambda.py.
//
// Cold start (module evaluation, Lambda's init phase), in this order:
// 1. if the deployment set `MCP_DEPLOY_SECRET_ARNS` (a JSON object NAME -> Secrets Manager
//    ARN), every secret is read in parallel with the runtime's @aws-sdk/client-secrets-manager
//    and set as process.env[NAME] (all or none: any failure fails the init);
// 2. the auth gate is made (bearer without a token secret fails the init: fail closed);
// 3. the server module (`mcp-deploy:app`, the spec's server.entry) is imported, dynamically,
//    so its top level (and its dependencies') runs after the secrets are in process.env.
//    Its default export must be a fetch handler `{ fetch(request, env, ctx) }`.
//
// Each invocation (a Function URL / HTTP API payload 2.0 event): the gate (gate.mjs: health
// path open; in mode oauth the Protected Resource Metadata; Origin; 400 for repeated
// Authorization headers, which the Function URL joins with commas; 401 without the token),
// with the public base URL `MCP_DEPLOY_PUBLIC_URL` when set (the local emulation sets it),
// else `https://` + the event's requestContext.domainName; then 405 for GET on the MCP path (an invocation cannot hold a server-sent-event stream
// open), then `app.fetch(request, process.env, context)`; its Response becomes the result
// (see http.mjs). Refusals are byte-identical to the Python shim's.
//
// MCP_DEPLOY_CONFIG is replaced at build time by a string of the runtime config's JSON (path,
// health_path, auth {mode, token_env, ...}, secrets): no environment config, no secret values.
// `mcp-deploy:oauth` is oauth.mjs in an oauth bundle, no-oauth.mjs in any other.

import { makeOAuth } from "mcp-deploy:oauth";
import { makeGate, pathOf, publicBase } from "./gate.mjs";
import { jsonResult, requestFromEvent, resultFromResponse } from "./http.mjs";

const CONFIG = JSON.parse(MCP_DEPLOY_CONFIG);
const SECRET_ARNS_VARIABLE = "MCP_DEPLOY_SECRET_ARNS";

// A GET on the MCP path asks for a server-sent-event stream; a Lambda invocation cannot hold
// one open, and stateless servers may refuse it (MCP streamable HTTP): answer 405 at once.
const NO_STREAM_HEADERS = { allow: "POST, DELETE", "content-type": "application/json" };
const NO_STREAM_BODY =
  '{"error": "this server answers POST requests only (stateless, JSON responses)"}';
const BAD_EVENT_BODY = '{"error": "invalid_request", "hint": "the request cannot be parsed"}';

/** Set each configured secret as an environment variable of the same name. */
async function loadSecretsFromSecretsManager() {
  const raw = process.env[SECRET_ARNS_VARIABLE];
  if (!raw) return;
  let arns;
  try {
    arns = JSON.parse(raw);
  } catch {
    arns = null;
  }
  if (arns === null || typeof arns !== "object" || Array.isArray(arns)) {
    throw new Error(`mcp-deploy: ${SECRET_ARNS_VARIABLE} is not a JSON object NAME -> ARN`);
  }
  const names = Object.keys(arns).sort();
  if (names.length === 0) return;
  // Provided by the Lambda Node.js runtime (AWS SDK v3); left external by the bundle.
  const { SecretsManagerClient, GetSecretValueCommand } = await import(
    "@aws-sdk/client-secrets-manager"
  );
  const client = new SecretsManagerClient({});
  const values = await Promise.all(
    names.map(async (name) => {
      let answer;
      try {
        answer = await client.send(new GetSecretValueCommand({ SecretId: arns[name] }));
      } catch (error) {
        throw new Error(
          `mcp-deploy: could not read the secret ${name} from Secrets Manager: ` +
            `${error?.name ?? "Error"}: ${error?.message ?? error}`,
        );
      }
      if (typeof answer.SecretString !== "string") {
        throw new Error(`mcp-deploy: the secret ${name} has no string value (SecretString)`);
      }
      return answer.SecretString;
    }),
  );
  names.forEach((name, index) => {
    process.env[name] = values[index];
  });
  client.destroy();
}

await loadSecretsFromSecretsManager();
const oauth = makeOAuth?.(CONFIG.auth, CONFIG.path) ?? null;
const gate = makeGate(CONFIG.auth, process.env, { health_path: CONFIG.health_path, oauth });
const { default: app } = await import("mcp-deploy:app");
if (app == null || typeof app.fetch !== "function") {
  throw new TypeError(
    "mcp-deploy: the default export of server.entry must be a fetch handler " +
      "({ fetch(request, env, ctx) })",
  );
}

/** Lambda handler: authorise, then serve the request with the server's fetch handler. */
export const handler = async (event, context) => {
  let request;
  try {
    request = requestFromEvent(event);
  } catch (error) {
    if (event?.requestContext?.http == null) throw error; // not an HTTP invocation at all
    return jsonResult(400, { "content-type": "application/json" }, BAD_EVENT_BODY);
  }
  const base = publicBase(process.env.MCP_DEPLOY_PUBLIC_URL, request.url);
  const passed = await gate(request, base);
  if (passed instanceof Response) {
    return resultFromResponse(passed, { head: request.method === "HEAD" });
  }
  request = passed;
  if (request.method === "GET" && pathOf(request) === CONFIG.path) {
    return jsonResult(405, NO_STREAM_HEADERS, NO_STREAM_BODY);
  }
  const response = await app.fetch(request, process.env, context);
  return resultFromResponse(response, { head: request.method === "HEAD" });
};
