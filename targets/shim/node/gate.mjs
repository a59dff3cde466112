// The auth gate of every Node shim (Lambda, Cloud Run, Workers): who may call the server.
//
// The JavaScript twin of targets/shim/mcp_deploy_gate.py, and it must stay byte-identical in
// what it answers: the same statuses, header values and JSON bodies (the Python module's
// REFUSALS, serialised as Python's json.dumps writes them: ", " and ": " separators).
//
// `bearer`: the request must carry exactly one `Authorization: Bearer <token>` value whose
// token equals the token secret (the environment variable / binding `token_env`), compared
// in constant time; an empty or missing token secret, or one with a comma (which no bearer
// token has, RFC 6750), is a start-up error (`makeGate` throws: fail closed). `iam` (checked
// by the platform) and `none` let every request through. The health path is always open.
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

/** Status -> {headers, body} of each refusal, as in the Python gate's REFUSALS. */
export const REFUSALS = Object.freeze({
  400: Object.freeze({ headers: AMBIGUOUS_HEADERS, body: AMBIGUOUS_BODY }),
  401: Object.freeze({ headers: UNAUTHORIZED_HEADERS, body: UNAUTHORIZED_BODY }),
});

const encoder = new TextEncoder();

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

/** The Response refusing a request with `status` (400 or 401). */
export function refusal(status) {
  const { headers, body } = REFUSALS[status];
  return new Response(body, { status, headers: { ...headers } });
}

/** The URL path of a request, as the app sees it (`new URL(request.url).pathname`). */
export function pathOf(request) {
  return new URL(request.url).pathname;
}

/**
 * The gate for `auth` = {mode, token_env, health_path} with the secrets in `env`: a function
 * Request -> Response (the refusal) | null (let it through). Throws at creation for `bearer`
 * without a usable token secret (see `bearerToken`).
 */
export function makeGate({ mode, token_env, health_path }, env) {
  if (mode !== "bearer") return () => null;
  const token = bearerToken(token_env, env);
  return (request) => {
    if (health_path != null && pathOf(request) === health_path) return null;
    const status = judgeBearer(token, request.headers.get("authorization"));
    return status === 200 ? null : refusal(status);
  };
}
