// The gate of every Node shim (Lambda, Cloud Run, Workers): who may call the server, and from
// which web page. The JavaScript twin of targets/shim/mcp_deploy_gate.py: the same statuses,
// header values and JSON bodies (serialised as Python's json.dumps writes them: ", " and ": "
// separators, non-ASCII escaped).
//
// In this order, for each request (`gate(request, base)`, `base` the public base URL
// `scheme://host[:port]` the shim works out: `MCP_DEPLOY_PUBLIC_URL` when set, else the
// platform's, see `publicBase`):
// 1. the health path is always let through (no Origin check, no credentials);
// 2. mode `oauth`: Protected Resource Metadata (RFC 9728) at
//    `/.well-known/oauth-protected-resource` and that plus the MCP path, for anyone;
// 3. `Origin` (every mode): absent, the base URL's own origin or one of `allowed_origins`
//    (case-insensitive; `null` only when listed), else 403 with a JSON-RPC error;
// 4. credentials:
//    - `bearer`: exactly one `Authorization: Bearer <token>` whose token equals the token secret
//      (the environment variable / binding `token_env`), compared in constant time; an empty
//      or missing token secret, or one with a comma (which no bearer token has, RFC 6750), is
//      a start-up error (`makeGate` throws: fail closed);
//    - `oauth`: what oauth.mjs (handed in by the shim: only oauth bundles have it) judges: a
//      JWT access token for the expected audience, carrying every required scope; 401 with a
//      challenge naming the metadata, 403 for too few scopes, 503 when the issuer's keys
//      cannot be fetched;
//    - `iam` (checked by the platform) and `none`: nothing.
// A request let through is returned as the Request to serve, its `Origin` header removed.
//
// Ambiguous credentials are refused with 400: the Fetch API's Headers (and Lambda's Function
// URL) join repeated headers with commas, so more than one Authorization header arrives as
// one value with a comma, which is never a valid bearer credential.
//
// Runs unchanged in Node and in workerd: standard Web APIs only (no node:* imports).

export const UNAUTHORIZED_BODY =
  '{"error": "unauthorized", "hint": "send Authorization: Bearer <token>"}';
export const UNAUTHORIZED_HEADERS = Object.freeze({
  "content-type": "application/json",
  "www-authenticate": 'Bearer realm="mcp"',
});
export const AMBIGUOUS_BODY =
  '{"error": "invalid_request", "hint": "send exactly one Authorization header, with one bearer token"}';
export const AMBIGUOUS_HEADERS = Object.freeze({
  "content-type": "application/json",
  "www-authenticate": 'Bearer realm="mcp", error="invalid_request"',
});
export const FORBIDDEN_ORIGIN_BODY =
  '{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "Forbidden: the Origin is not allowed"}}';
const JSON_HEADERS = Object.freeze({ "content-type": "application/json" });

/** Status -> {headers, body} of each refusal, as in the Python gate's REFUSALS. */
export const REFUSALS = Object.freeze({
  400: Object.freeze({ headers: AMBIGUOUS_HEADERS, body: AMBIGUOUS_BODY }),
  401: Object.freeze({ headers: UNAUTHORIZED_HEADERS, body: UNAUTHORIZED_BODY }),
});

const encoder = new TextEncoder();

/** A JSON string as Python's json.dumps writes it (ensure_ascii: non-ASCII as \uXXXX). */
function pyString(text) {
  return JSON.stringify(text).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** `value` (null, strings, numbers, arrays, plain objects) as Python's json.dumps writes it. */
export function pyDumps(value) {
  if (typeof value === "string") return pyString(value);
  if (Array.isArray(value)) return `[${value.map(pyDumps).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const members = Object.entries(value).map(([k, v]) => `${pyString(k)}: ${pyDumps(v)}`);
    return `{${members.join(", ")}}`;
  }
  return JSON.stringify(value);
}

/** Equal byte strings, in time that depends only on their lengths. */
function sameBytes(a, b) {
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) {
    difference |= a[i] ^ (i < b.length ? b[i] : 0);
  }
  return difference === 0;
}

/**
 * The token secret `token_env` of `env` (process.env or Workers bindings) for mode `bearer`;
 * throws (fail closed) when it is missing, empty or holds a comma. The messages are the
 * Python gate's.
 */
export function bearerToken(token_env, env) {
  const value = env == null ? undefined : env[token_env];
  const token = typeof value === "string" ? value : "";
  if (!token) {
    throw new Error(
      `auth.mode is 'bearer' but the token secret ${token_env} is empty or not set`,
    );
  }
  if (token.includes(",")) {
    throw new Error(
      `the token secret ${token_env} contains a comma, which a bearer token cannot ` +
        "(RFC 6750): choose one of letters, digits and -._~+/=",
    );
  }
  return token;
}

/**
 * 200 to let a request through, 400 for ambiguous credentials (a value with a comma), else
 * 401 unless `authorization` (the one Authorization value, or null when absent) is
 * `Bearer <token>`. Mirrors BearerGate.judge for a bearer gate off the health path.
 */
export function judgeBearer(token, authorization) {
  const value = authorization ?? "";
  const space = value.indexOf(" ");
  const scheme = space < 0 ? value : value.slice(0, space);
  const presented = space < 0 ? "" : value.slice(space + 1);
  const matches = sameBytes(encoder.encode(presented.trim()), encoder.encode(token));
  if (value.includes(",")) return 400;
  return scheme.toLowerCase() === "bearer" && matches ? 200 : 401;
}

/** The Response refusing a request with `status` (400 or 401, bearer's answers). */
export function refusal(status) {
  const { headers, body } = REFUSALS[status];
  return new Response(body, { status, headers: { ...headers } });
}

/** The URL path of a request, as the app sees it (`new URL(request.url).pathname`). */
export function pathOf(request) {
  return new URL(request.url).pathname;
}

/**
 * The public base URL (`scheme://host[:port]`, no path): `configured` (MCP_DEPLOY_PUBLIC_URL)
 * when it is a non-empty http(s) URL, else `platform` (what the platform says: a URL or an
 * origin). Lowercase scheme and host, no default port, no trailing slash.
 */
export function publicBase(configured, platform) {
  for (const candidate of [configured, platform]) {
    if (typeof candidate !== "string" || candidate === "") continue;
    try {
      const url = new URL(candidate);
      if (url.protocol === "http:" || url.protocol === "https:") return url.origin;
    } catch {
      // not a URL: try the next one
    }
  }
  throw new TypeError("mcp-deploy: no public base URL (MCP_DEPLOY_PUBLIC_URL or the platform's)");
}

/** Whether a request with Origin `origin` (null: none) may reach a server at `base`: the
 * base's own origin or a listed one, compared without case or a trailing slash. */
export function originAllowed(origin, base, allowed = []) {
  if (origin === null) return true;
  const plain = (text) => String(text).trim().replace(/\/+$/, "").toLowerCase();
  const value = plain(origin);
  return value === plain(base) || allowed.some((entry) => plain(entry) === value);
}

/** The 403 for a foreign Origin. */
export function forbiddenOrigin() {
  return new Response(FORBIDDEN_ORIGIN_BODY, { status: 403, headers: { ...JSON_HEADERS } });
}

/** `request` without its Origin header (a new Request; the body is handed over). */
function withoutOrigin(request) {
  if (!request.headers.has("origin")) return request;
  const headers = new Headers(request.headers);
  headers.delete("origin");
  return new Request(request, { headers });
}

/**
 * The gate for `auth` (the runtime config's auth object: mode, token_env, any mode's
 * allowed_origins, the oauth keys) with the secrets in `env`. `options`: `health_path`, and
 * for mode oauth `oauth` (oauth.mjs's `makeOAuth(auth, mcpPath)`: the metadata and the token
 * check).
 *
 * Returns `async (request, base) => Response | Request`: the answer (a refusal, or the
 * metadata), or the Request to serve (Origin removed). Throws at creation for `bearer`
 * without a usable token secret (see `bearerToken`), and for `oauth` without `oauth`.
 */
export function makeGate(auth, env, { health_path = null, oauth = null } = {}) {
  const mode = auth.mode;
  const allowed = Array.isArray(auth.allowed_origins) ? auth.allowed_origins : [];
  const token = mode === "bearer" ? bearerToken(auth.token_env, env) : null;
  if (mode === "oauth" && (oauth == null || typeof oauth.judge !== "function")) {
    throw new Error("auth.mode is 'oauth' but this bundle has no token verifier (rebuild it)");
  }

  return async (request, base) => {
    const path = pathOf(request);
    if (health_path != null && path === health_path) return request;
    if (mode === "oauth") {
      const metadata = oauth.metadata(request, path, base);
      if (metadata !== null) return metadata;
    }
    if (!originAllowed(request.headers.get("origin"), base, allowed)) return forbiddenOrigin();
    const authorization = request.headers.get("authorization");
    if (mode === "bearer") {
      const status = judgeBearer(token, authorization);
      if (status !== 200) return refusal(status);
    } else if (mode === "oauth") {
      const refused = await oauth.judge(authorization, base);
      if (refused !== null) return refused;
    }
    return withoutOrigin(request);
  };
}
