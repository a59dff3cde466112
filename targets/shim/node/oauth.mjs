// Mode `oauth` of the Node shims' gate (gate.mjs): the server as an OAuth 2.1 resource
// server. `makeOAuth(auth, mcpPath)` gives the gate
// - `metadata(request, path, base)`: Protected Resource Metadata (RFC 9728) at
//   `/.well-known/oauth-protected-resource` and that plus the MCP path (GET/HEAD 200, OPTIONS
//   204, other methods 405; CORS open to any origin), null for any other path;
// - `judge(authorization, base)`: null to let the request through, else the refusal: 400 for
//   more than one Authorization value (bearer's answer), 401 with
//   `WWW-Authenticate: Bearer resource_metadata="<base>/.well-known/oauth-protected-resource
//   <mcp path>", scope="<scopes>"` without a bearer token, 401 `error="invalid_token"` for
//   one the verifier refuses, 403 `error="insufficient_scope"` for a valid one lacking a
//   required scope, 503 when the issuer's keys cannot be fetched.
// The resource is the audience when that is an http(s) URL, else base + MCP path; the
// expected audience is the audience when set, else the resource.
//
// Bundled only into artifacts whose auth mode is oauth: the shims import
// `mcp-deploy:oauth`, which the bundler resolves to this module then, and to no-oauth.mjs
// otherwise (orchestrator/build/esbuild.py), so other bundles carry neither this nor jose.
//
// The token verifier (`makeVerifier`), on `jose`: JWT access tokens signed by the issuer's
// keys (its JWKS).
// - Keys: from `auth.jwks_uri`, else discovered lazily (on the first token that needs a key)
//   from `<issuer without trailing slash>/.well-known/openid-configuration`, falling back to
//   RFC 8414's `<scheme>://<host>/.well-known/oauth-authorization-server<issuer path>`; the
//   document's `issuer` must equal the configured issuer. A failed discovery, or a failed
//   fetch of keys the gate no longer holds fresh, is retried at most every 5 s (503 meanwhile,
//   at once). jose's remote key set caches the keys for 10 minutes, refetches once on an
//   unknown `kid` unless it fetched less than 5 s ago (rotation), and gives up on a fetch
//   after 5 s.
// - A token is valid when it is a compact JWS whose `alg` is in `auth.algorithms` (never
//   `none` or HS*), whose key (by `kid`; without one, the only usable key) verifies its
//   signature, with `iss` = the issuer, the expected audience in `aud` (audience_claim "aud")
//   or equal to `client_id` (audience_claim "client_id"), `exp` present and > now, `nbf` (if
//   any) <= now. No clock leeway. A token longer than 16 KiB is refused unread.
// - A token found valid for an audience is taken as valid again for that audience, without
//   its signature checked again, until the keys are fetched again, for 60 s at most and never
//   past its `exp` (256 tokens remembered): warm calls cost a map lookup, not a signature
//   check, and a token whose key left the issuer's set is refused as soon as the gate has
//   fetched the set again, as without the memory.
//
// `verify(token, audience)` resolves to {status: 200, payload} | {status: 401, hint} |
// {status: 503} (the keys cannot be fetched). The hint says why, never the token.
// Standard Web APIs only (fetch, WebCrypto through jose): runs in Node and in workerd.

import { createRemoteJWKSet, customFetch, errors, jwtVerify } from "jose";
import { pyDumps, refusal } from "./gate.mjs";

export const JWKS_OPTIONS = Object.freeze({
  cooldownDuration: 5000,
  cacheMaxAge: 600000,
  timeoutDuration: 5000,
});
const DISCOVERY_TIMEOUT = 5000;
const DISCOVERY_RETRY = 5000;
const NEVER = /^(none|HS\d+)$/i;
const MAX_TOKEN = 16 * 1024;
const VERIFIED_TTL = 60000; // ms a verified token is taken as verified again
const VERIFIED_MAX = 256; // tokens remembered
export const METADATA_PATH = "/.well-known/oauth-protected-resource";
export const UNAVAILABLE_BODY =
  '{"error": "temporarily_unavailable", "hint": "the issuer\'s keys cannot be fetched"}';
const JSON_HEADERS = Object.freeze({ "content-type": "application/json" });
const METADATA_METHODS = "GET, HEAD, OPTIONS";

/** The keys cannot be had (discovery or key-set fetch failed): answered 503. */
class KeysUnavailable extends Error {}

/** The discovery URLs of `issuer`: OpenID Connect's, then RFC 8414's. */
export function discoveryUrls(issuer) {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, "");
  return [
    `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`,
    `${url.protocol}//${url.host}/.well-known/oauth-authorization-server${path}`,
  ];
}

/** The jwks_uri the issuer's metadata names (the first discovery URL that answers with a
 * document of this issuer naming one); throws KeysUnavailable otherwise. */
async function discoverJwksUri(issuer) {
  const reasons = [];
  for (const url of discoveryUrls(issuer)) {
    try {
      const response = await fetch(url, {
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(DISCOVERY_TIMEOUT),
      });
      if (response.status !== 200) {
        await response.body?.cancel();
        reasons.push(`${url}: HTTP ${response.status}`);
        continue;
      }
      const document = await response.json();
      if (document?.issuer !== issuer) {
        reasons.push(`${url}: the document is of another issuer`);
      } else if (typeof document.jwks_uri !== "string") {
        reasons.push(`${url}: the document names no jwks_uri`);
      } else {
        return new URL(document.jwks_uri);
      }
    } catch (error) {
      reasons.push(`${url}: ${error?.name ?? "Error"}`);
    }
  }
  throw new KeysUnavailable(`the issuer's metadata cannot be had (${reasons.join("; ")})`);
}

/** The 401 hint for a jose error (the Python gate's wording; never the token). */
function hintFor(error, issuer, audience, algorithms) {
  if (error instanceof errors.JWTExpired) return "the token has expired";
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === "missing") return `the token has no ${error.claim} claim`;
    if (error.claim === "nbf") return "the token is not valid yet (nbf)";
    if (error.claim === "iss") return `the token's issuer is not ${issuer}`;
    if (error.claim === "aud") return `the token's audience is not ${audience}`;
    return `the token's ${error.claim} claim is invalid`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return `the token's algorithm is not allowed (allowed: ${[...algorithms].sort().join(", ")})`;
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return "no key of the issuer matches the token's kid";
  }
  if (error instanceof errors.JWKSMultipleMatchingKeys) {
    return "the token names no key (kid) and the issuer has not exactly one";
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return "the token's signature is invalid";
  }
  return "the token is not a signed JWT";
}

/** Keep a verified token's payload for VERIFIED_TTL ms at most (never past its `exp`). */
function remember(cache, key, payload) {
  const until = Math.min(Date.now() + VERIFIED_TTL, payload.exp * 1000);
  if (cache.size >= VERIFIED_MAX) cache.delete(cache.keys().next().value); // the oldest
  cache.set(key, { payload, until });
}

/** The payload of a token verified for this audience a moment ago, else null. */
function recall(cache, key) {
  const entry = cache.get(key);
  if (entry === undefined) return null;
  if (Date.now() < entry.until) return entry.payload;
  cache.delete(key);
  return null;
}

/**
 * The verifier for `auth` (see the module comment). `options` (tests): `jwks`
 * (createRemoteJWKSet options instead of JWKS_OPTIONS), `discoveryRetry` (ms).
 */
export function makeVerifier(auth, options = {}) {
  const verified = new Map(); // `${audience}\n${token}` -> {payload, until}
  const jwksOptions = {
    ...(options.jwks ?? JWKS_OPTIONS),
    // Every fetch of the keys forgets the tokens verified with the previous ones.
    [customFetch]: (url, init) => {
      verified.clear();
      return fetch(url, init);
    },
  };
  const retry = options.discoveryRetry ?? DISCOVERY_RETRY;
  const algorithms = (auth.algorithms ?? []).filter((alg) => !NEVER.test(alg));
  const byClientId = auth.audience_claim === "client_id";
  let keys = auth.jwks_uri ? createRemoteJWKSet(new URL(auth.jwks_uri), jwksOptions) : null;
  let failedAt = -Infinity; // the last failed discovery
  let keysFailedAt = -Infinity; // the last failed fetch of the keys

  async function keySet() {
    if (keys !== null) return keys;
    if (Date.now() - failedAt < retry) {
      throw new KeysUnavailable("the issuer's metadata could not be had a moment ago");
    }
    try {
      // Concurrent first requests may each discover (no promise is shared between requests:
      // workerd ties I/O to the request that started it).
      const uri = await discoverJwksUri(auth.issuer);
      keys ??= createRemoteJWKSet(uri, jwksOptions);
      return keys;
    } catch (error) {
      failedAt = Date.now();
      throw error;
    }
  }

  async function key(header, token) {
    const set = await keySet();
    if (!set.fresh && Date.now() - keysFailedAt < retry) {
      throw new KeysUnavailable("the issuer's keys could not be fetched a moment ago");
    }
    try {
      return await set(header, token);
    } catch (error) {
      if (
        error instanceof errors.JWKSNoMatchingKey ||
        error instanceof errors.JWKSMultipleMatchingKeys ||
        error instanceof errors.JOSENotSupported
      ) {
        throw error;
      }
      keysFailedAt = Date.now();
      throw new KeysUnavailable("the issuer's keys cannot be fetched", { cause: error });
    }
  }

  return {
    async verify(token, audience) {
      if (token.length > MAX_TOKEN) return { status: 401, hint: "the token is too long" };
      const known = recall(verified, `${audience}\n${token}`);
      if (known !== null) return { status: 200, payload: known };
      if (algorithms.length === 0) return { status: 401, hint: "no signing algorithm is allowed" };
      const checks = { issuer: auth.issuer, algorithms, requiredClaims: ["exp"] };
      if (!byClientId) checks.audience = audience;
      let payload;
      try {
        ({ payload } = await jwtVerify(token, key, checks));
      } catch (error) {
        if (error instanceof KeysUnavailable) return { status: 503 };
        return { status: 401, hint: hintFor(error, auth.issuer, audience, algorithms) };
      }
      if (byClientId && payload.client_id !== audience) {
        return { status: 401, hint: `the token's client_id is not ${audience}` };
      }
      remember(verified, `${audience}\n${token}`, payload);
      return { status: 200, payload };
    },
  };
}

/** The resource (RFC 9728/8707) of a server at `base`: an http(s) audience, else base + path. */
export function resourceOf(auth, base, mcpPath) {
  const audience = auth.audience;
  if (typeof audience === "string" && /^https?:\/\//i.test(audience)) return audience;
  return base + mcpPath;
}

/** The Protected Resource Metadata document of a server at `base`. */
export function metadataDocument(auth, base, mcpPath) {
  const document = {
    resource: resourceOf(auth, base, mcpPath),
    authorization_servers: [auth.issuer],
    bearer_methods_supported: ["header"],
  };
  if (auth.scopes.length > 0) document.scopes_supported = [...auth.scopes];
  return document;
}

/** The answer of a metadata URL to `method`. */
function metadataAnswer(method, auth, base, mcpPath) {
  const cors = { "access-control-allow-origin": "*" };
  if (method === "GET" || method === "HEAD") {
    const headers = { ...JSON_HEADERS, ...cors, "cache-control": "public, max-age=300" };
    const body = method === "GET" ? pyDumps(metadataDocument(auth, base, mcpPath)) : null;
    return new Response(body, { status: 200, headers });
  }
  if (method === "OPTIONS") {
    const headers = {
      ...cors,
      "access-control-allow-methods": METADATA_METHODS,
      "access-control-allow-headers": "*",
    };
    return new Response(null, { status: 204, headers });
  }
  const body = '{"error": "method not allowed"}';
  return new Response(body, { status: 405, headers: { allow: METADATA_METHODS, ...JSON_HEADERS } });
}

/** `Bearer a="1", b="2"` of the pairs `[name, value]` whose value is not null. */
function challenge(pairs) {
  const parts = pairs.filter(([, value]) => value !== null).map(([k, v]) => `${k}="${v}"`);
  return `Bearer ${parts.join(", ")}`;
}

/** The scopes a verified token carries (`scope_claim` "scope": a space-separated string;
 * "scp": an array of strings or a space-separated string). */
export function grantedScopes(payload, scopeClaim) {
  const value = payload?.[scopeClaim];
  if (typeof value === "string") return new Set(value.split(/\s+/).filter(Boolean));
  if (scopeClaim === "scp" && Array.isArray(value)) {
    return new Set(value.filter((scope) => typeof scope === "string"));
  }
  return new Set();
}

/** The oauth refusals, given the metadata URL of the server. */
function oauthAnswers(auth, metadataUrl) {
  const scope = auth.scopes.length > 0 ? auth.scopes.join(" ") : null;
  const json = (status, headers, body) =>
    new Response(body, { status, headers: { ...JSON_HEADERS, ...headers } });
  return {
    missing: () =>
      json(
        401,
        { "www-authenticate": challenge([["resource_metadata", metadataUrl], ["scope", scope]]) },
        pyDumps({
          error: "unauthorized",
          hint: `send Authorization: Bearer <an access token from ${auth.issuer}>`,
        }),
      ),
    invalid: (hint) =>
      json(
        401,
        {
          "www-authenticate": challenge([
            ["error", "invalid_token"],
            ["resource_metadata", metadataUrl],
            ["scope", scope],
          ]),
        },
        pyDumps({ error: "invalid_token", hint }),
      ),
    insufficient: (missing) =>
      json(
        403,
        {
          "www-authenticate": challenge([
            ["error", "insufficient_scope"],
            ["scope", scope ?? ""],
            ["resource_metadata", metadataUrl],
          ]),
        },
        pyDumps({ error: "insufficient_scope", hint: `the token lacks: ${missing.join(" ")}` }),
      ),
    unavailable: () => json(503, {}, UNAVAILABLE_BODY),
  };
}

/** null to let an oauth request through, else the refusal. */
async function judge(auth, verifier, authorization, base, mcpPath) {
  if (authorization !== null && authorization.includes(",")) return refusal(400);
  const answers = oauthAnswers(auth, `${base}${METADATA_PATH}${mcpPath}`);
  const value = (authorization ?? "").trim();
  const space = value.indexOf(" ");
  const scheme = space < 0 ? value : value.slice(0, space);
  const presented = space < 0 ? "" : value.slice(space + 1).trim();
  if (scheme.toLowerCase() !== "bearer" || presented === "") return answers.missing();
  const audience = auth.audience ?? resourceOf(auth, base, mcpPath);
  const outcome = await verifier.verify(presented, audience);
  if (outcome.status === 503) return answers.unavailable();
  if (outcome.status !== 200) return answers.invalid(outcome.hint);
  const granted = grantedScopes(outcome.payload, auth.scope_claim ?? "scope");
  const missing = auth.scopes.filter((scope) => !granted.has(scope));
  return missing.length > 0 ? answers.insufficient(missing) : null;
}

/**
 * The oauth part of the gate for `auth` and the MCP path `mcpPath` (see the module comment).
 * `options`: `verifier` (instead of `makeVerifier(auth, options)`; tests), and
 * makeVerifier's options.
 */
export function makeOAuth(auth, mcpPath, options = {}) {
  const verifier = options.verifier ?? makeVerifier(auth, options);
  const paths = new Set([METADATA_PATH, METADATA_PATH + mcpPath]);
  return {
    metadata: (request, path, base) =>
      paths.has(path) ? metadataAnswer(request.method, auth, base, mcpPath) : null,
    judge: (authorization, base) => judge(auth, verifier, authorization, base, mcpPath),
  };
}
