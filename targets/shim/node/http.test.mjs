// Tests of http.mjs (run: node --test targets/shim/node/). Servers bind 127.0.0.1 only.

import assert from "node:assert/strict";
import http from "node:http";
import test from "node:test";
import {
  requestFromEvent,
  requestFromIncoming,
  resultFromResponse,
  writeResponse,
} from "./http.mjs";

const DOMAIN = "abc.lambda-url.us-east-1.on.aws";

function event(method, path, extra = {}) {
  return {
    version: "2.0",
    rawPath: path,
    rawQueryString: "",
    headers: { host: DOMAIN },
    requestContext: { domainName: DOMAIN, http: { method, path } },
    isBase64Encoded: false,
    ...extra,
  };
}

test("a Function URL event becomes a Request", async () => {
  const request = requestFromEvent(
    event("POST", "/mcp", {
      rawQueryString: "a=1&b=2",
      headers: { host: DOMAIN, "content-type": "application/json", "x-many": "1,2" },
      cookies: ["a=1", "b=2"],
      body: '{"jsonrpc":"2.0"}',
    }),
  );
  assert.equal(request.method, "POST");
  assert.equal(request.url, `https://${DOMAIN}/mcp?a=1&b=2`);
  assert.equal(request.headers.get("cookie"), "a=1; b=2");
  assert.equal(request.headers.get("x-many"), "1,2");
  assert.equal(await request.text(), '{"jsonrpc":"2.0"}');
});

test("a base64 body is decoded; GET bodies are dropped", async () => {
  const bytes = Buffer.from([0, 255, 1, 254]);
  const request = requestFromEvent(
    event("PUT", "/x", { body: bytes.toString("base64"), isBase64Encoded: true }),
  );
  assert.deepEqual(Buffer.from(await request.arrayBuffer()), bytes);
  const get = requestFromEvent(event("GET", "/x", { body: "ignored" }));
  assert.equal(get.body, null);
});

test("something that is not a payload 2.0 event is refused", () => {
  assert.throws(() => requestFromEvent({ hello: "world" }), TypeError);
});

test("a Response becomes a payload 2.0 result: text, cookies, binary", async () => {
  const headers = new Headers({ "content-type": "text/plain", "x-a": "1" });
  headers.append("set-cookie", "a=1; Path=/");
  headers.append("set-cookie", "b=2");
  const text = await resultFromResponse(new Response("héllo", { status: 201, headers }));
  assert.deepEqual(text, {
    statusCode: 201,
    headers: { "content-type": "text/plain", "x-a": "1" },
    body: "héllo",
    isBase64Encoded: false,
    cookies: ["a=1; Path=/", "b=2"],
  });
  const binary = await resultFromResponse(new Response(new Uint8Array([0xff, 0xfe, 0])));
  assert.equal(binary.isBase64Encoded, true);
  assert.equal(binary.body, Buffer.from([0xff, 0xfe, 0]).toString("base64"));
  const bom = await resultFromResponse(new Response(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])));
  assert.equal(bom.body, "\ufeffA");
  const head = await resultFromResponse(new Response("body"), { head: true });
  assert.equal(head.body, "");
});

async function withServer(handler, run) {
  const server = http.createServer(handler);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    return await run(`http://127.0.0.1:${server.address().port}`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

test("node:http requests keep every Authorization value and stream their body", async () => {
  let seen;
  await withServer(
    async (req, res) => {
      const request = requestFromIncoming(req, new AbortController().signal);
      seen = { url: request.url, auth: request.headers.get("authorization"), body: await request.text() };
      await writeResponse(res, new Response("ok"));
    },
    async (base) => {
      await new Promise((resolve, reject) => {
        const request = http.request(`${base}/mcp?x=1`, {
          method: "POST",
          // A flat list keeps repeated names (node's server requires the Host header).
          headers: [
            "Host", new URL(base).host,
            "Authorization", "Bearer a",
            "Authorization", "Bearer b",
            "X-Forwarded-Proto", "https",
          ],
        });
        request.on("response", (res) => res.resume().on("end", resolve));
        request.on("error", reject);
        request.end("payload");
      });
    },
  );
  assert.equal(seen.auth, "Bearer a, Bearer b");
  assert.equal(seen.body, "payload");
  assert.match(seen.url, /^https:\/\/127\.0\.0\.1:\d+\/mcp\?x=1$/);
});

test("an absolute-form request target keeps its path and query", async () => {
  let url;
  await withServer(
    (req, res) => {
      url = requestFromIncoming(req, new AbortController().signal).url;
      res.end();
    },
    async (base) => {
      const { port, host } = new URL(base);
      await new Promise((resolve, reject) => {
        const request = http.request({ host: "127.0.0.1", port, path: "http://elsewhere/abs?q=1" });
        request.setHeader("Host", host);
        request.on("response", (res) => res.resume().on("end", resolve));
        request.on("error", reject);
        request.end();
      });
    },
  );
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/abs\?q=1$/);
});

test("a bad Host header gives no Request", async () => {
  let made;
  await withServer(
    (req, res) => {
      made = requestFromIncoming(req, new AbortController().signal);
      res.end();
    },
    async (base) => {
      const { port } = new URL(base);
      await new Promise((resolve, reject) => {
        const request = http.request({ host: "127.0.0.1", port, path: "/", headers: { Host: "a/b?c" } });
        request.on("response", (res) => res.resume().on("end", resolve));
        request.on("error", reject);
        request.end();
      });
    },
  );
  assert.equal(made, null);
});

test("response chunks reach the client as they are produced", async () => {
  let release;
  const gate = new Promise((resolve) => {
    release = resolve;
  });
  await withServer(
    async (req, res) => {
      const body = new ReadableStream({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode("data: first\n\n"));
          await gate;
          controller.enqueue(new TextEncoder().encode("data: second\n\n"));
          controller.close();
        },
      });
      const headers = { "content-type": "text/event-stream" };
      await writeResponse(res, new Response(body, { headers }));
    },
    async (base) => {
      const response = await fetch(`${base}/mcp`);
      assert.equal(response.headers.get("content-type"), "text/event-stream");
      const reader = response.body.getReader();
      const first = await reader.read(); // arrives while the second is held back
      assert.equal(new TextDecoder().decode(first.value), "data: first\n\n");
      release();
      let rest = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      assert.equal(rest, "data: second\n\n");
    },
  );
});
