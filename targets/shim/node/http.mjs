// Conversions between the platforms' HTTP shapes and the Fetch API's Request / Response, for
// the Node shims (lambda.mjs, serve.mjs). Node 20+ only (Buffer, node:stream).
//
// Lambda Function URL (payload 2.0) events -> Request: method from requestContext.http, URL
// `https://<domainName><rawPath>[?<rawQueryString>]`, headers as given (Function URLs join
// repeated headers with commas), `cookies` joined back into one Cookie header with "; ",
// body decoded from base64 when isBase64Encoded. Response -> result: statusCode, headers
// (Set-Cookie values moved to `cookies`), body as UTF-8 text when the bytes are valid UTF-8
// (lossless) and base64 otherwise.
//
// node:http -> Request: every raw header (node's `req.headers` would drop repeated
// Authorization values) but the hop-by-hop ones, a streamed body, an AbortSignal that fires
// when the client goes away. Response -> node:http: status and headers written and flushed
// at once, then each body chunk as it arrives (server-sent events are not held back).

import { Readable } from "node:stream";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);
const NO_BODY_METHODS = new Set(["GET", "HEAD"]);

/** The Request a Function URL (payload 2.0) event describes. Throws TypeError on an event
 * that is not one, or whose URL or headers the Fetch API rejects. */
export function requestFromEvent(event) {
  const http = event?.requestContext?.http;
  if (!http || typeof http.method !== "string") {
    throw new TypeError("not a Lambda Function URL event (payload format 2.0)");
  }
  const headers = new Headers();
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (value != null) headers.append(name, String(value));
  }
  if (Array.isArray(event.cookies) && event.cookies.length > 0) {
    headers.set("cookie", event.cookies.join("; "));
  }
  const domain = event.requestContext.domainName || headers.get("host") || "localhost";
  const query = event.rawQueryString ? `?${event.rawQueryString}` : "";
  const url = `https://${domain}${event.rawPath || "/"}${query}`;
  const method = http.method.toUpperCase();
  let body;
  if (event.body != null && event.body !== "" && !NO_BODY_METHODS.has(method)) {
    body = event.isBase64Encoded ? Buffer.from(event.body, "base64") : String(event.body);
  }
  return new Request(url, { method, headers, body });
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The payload 2.0 result for a Response (its whole body read). HEAD answers carry no body. */
export async function resultFromResponse(response, { head = false } = {}) {
  const headers = {};
  for (const [name, value] of response.headers) {
    if (name !== "set-cookie") headers[name] = value;
  }
  const cookies = response.headers.getSetCookie();
  const bytes = head || response.body === null
    ? new Uint8Array(0)
    : new Uint8Array(await response.arrayBuffer());
  if (head && response.body !== null) await response.body.cancel().catch(() => {});
  let body;
  let isBase64Encoded = false;
  try {
    body = strictUtf8.decode(bytes);
  } catch {
    body = Buffer.from(bytes).toString("base64");
    isBase64Encoded = true;
  }
  const result = { statusCode: response.status, headers, body, isBase64Encoded };
  if (cookies.length > 0) result.cookies = cookies;
  return result;
}

/** A plain JSON payload 2.0 result (`body` already serialised). */
export function jsonResult(statusCode, headers, body) {
  return { statusCode, headers: { ...headers }, body, isBase64Encoded: false };
}

/** The path and query of a request target: origin-form as is, absolute-form (proxies)
 * reduced to its path and query, anything else ("*") made a path. */
function requestTarget(target) {
  if (target.startsWith("/")) return target;
  if (/^https?:\/\//i.test(target)) {
    try {
      const url = new URL(target);
      return `${url.pathname}${url.search}`;
    } catch {
      // not a URL after all: fall through
    }
  }
  return `/${target}`;
}

const HOST = /^(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * The Request for a node:http request: `scheme` is X-Forwarded-Proto's first value when it
 * is http or https (Cloud Run's front end sets it), else "http"; the authority is the Host
 * header. Returns null when the Host header is missing or not a host name (answer 400).
 */
export function requestFromIncoming(req, signal) {
  const host = req.headers.host;
  if (typeof host !== "string" || !HOST.test(host)) return null;
  const forwarded = String(req.headers["x-forwarded-proto"] ?? "").split(",")[0].trim();
  const scheme = forwarded === "https" || forwarded === "http" ? forwarded : "http";
  const target = requestTarget(req.url ?? "/");
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i].toLowerCase())) headers.append(raw[i], raw[i + 1]);
  }
  const method = req.method ?? "GET";
  const init = { method, headers, signal };
  if (!NO_BODY_METHODS.has(method)) {
    init.body = Readable.toWeb(req);
    init.duplex = "half";
  }
  return new Request(`${scheme}://${host}${target}`, init);
}

/**
 * Write `response` to node:http's `res`: head flushed at once, then the body chunk by chunk
 * as the app produces it (honouring back-pressure). Resolves when the body is done or the
 * client is gone (then the body stream is cancelled).
 */
export async function writeResponse(res, response, { head = false } = {}) {
  res.statusCode = response.status;
  for (const [name, value] of response.headers) {
    if (name !== "set-cookie") res.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader("set-cookie", cookies);
  if (head || response.body === null) {
    if (response.body !== null) await response.body.cancel().catch(() => {});
    res.end();
    return;
  }
  res.flushHeaders();
  const reader = response.body.getReader();
  const gone = () => reader.cancel().catch(() => {});
  res.once("close", gone);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) return;
      if (!res.write(value)) {
        await new Promise((resolve) => {
          const settle = () => {
            res.off("drain", settle);
            res.off("close", settle);
            resolve();
          };
          res.on("drain", settle);
          res.on("close", settle);
        });
      }
    }
    res.end();
  } finally {
    res.off("close", gone);
  }
}
