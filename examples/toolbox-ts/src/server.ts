/**
 * The toolbox MCP server on the official TypeScript SDK, as a web-standard fetch handler.
 *
 * The default export is `{ fetch(request, env?, ctx?) }`: Cloudflare Workers call it as it is;
 * mcp-deploy adapts it to Lambda (Function URL events) and Cloud Run (an HTTP server on $PORT).
 * It only uses web-standard APIs (Request, Response, Web Crypto, TextEncoder) and `process.env`
 * (which Workers provide with the `nodejs_compat` flag), so the same module runs everywhere.
 *
 * Stateless streamable HTTP with JSON responses, as the SDK does it for fetch-based runtimes: a
 * fresh McpServer and WebStandardStreamableHTTPServerTransport for every request (a stateless
 * transport serves exactly one request), no Mcp-Session-Id, any instance answers any request.
 *
 * Tools (the same as the Python example, examples/toolbox):
 * - `add(a, b)`: integer sum;
 * - `greet(name)`: `"{GREETING}, {name}!"`, GREETING from the environment (default "Hello");
 * - `word_count(text)`: counts whitespace-separated words;
 * - `secret_fingerprint()`: proves the TOOLBOX_API_KEY secret arrived without revealing it
 *   (the first 12 hex digits of its SHA-256).
 */

import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import * as z from "zod/v4";

const MCP_PATH = "/mcp";

/** A setting from the environment: a Workers binding of that name if the runtime passed one,
 * else `process.env` (Lambda, Cloud Run, Node; Workers with nodejs_compat). Read per call. */
function setting(env: unknown, name: string): string | undefined {
  if (typeof env === "object" && env !== null) {
    const bound: unknown = (env as Record<string, unknown>)[name];
    if (typeof bound === "string") {
      return bound;
    }
  }
  return typeof process === "undefined" ? undefined : process.env[name];
}

/** A tool result whose structured content is `value` (as the Python SDK sends it). */
function structured<T extends Record<string, unknown>>(value: T, text: string): CallToolResult {
  return { content: [{ type: "text", text }], structuredContent: value };
}

async function sha256Hex(value: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** A new server with the four tools; `env` is what the runtime passed to `fetch`, if anything. */
export function createServer(env?: unknown): McpServer {
  const server = new McpServer(
    { name: "toolbox-ts", version: "0.1.0" },
    { instructions: "Small arithmetic and text tools." },
  );

  server.registerTool(
    "add",
    {
      description: "Add two integers.",
      inputSchema: { a: z.number().int(), b: z.number().int() },
      outputSchema: { result: z.number().int() },
    },
    async ({ a, b }) => structured({ result: a + b }, String(a + b)),
  );

  server.registerTool(
    "greet",
    {
      description: "Greet someone with the configured GREETING.",
      inputSchema: { name: z.string() },
      outputSchema: { result: z.string() },
    },
    async ({ name }) => {
      const text = `${setting(env, "GREETING") ?? "Hello"}, ${name}!`;
      return structured({ result: text }, text);
    },
  );

  server.registerTool(
    "word_count",
    {
      description: "Count the words in a text.",
      inputSchema: { text: z.string() },
      outputSchema: { result: z.number().int() },
    },
    async ({ text }) => {
      const count = text.split(/\s+/).filter((word) => word !== "").length;
      return structured({ result: count }, String(count));
    },
  );

  server.registerTool(
    "secret_fingerprint",
    {
      description: "Say whether TOOLBOX_API_KEY is set, with a short SHA-256 fingerprint of it.",
      outputSchema: { configured: z.boolean(), sha256_12: z.string().optional() },
    },
    async () => {
      const value = setting(env, "TOOLBOX_API_KEY");
      const answer =
        value === undefined
          ? { configured: false }
          : { configured: true, sha256_12: (await sha256Hex(value)).slice(0, 12) };
      return structured(answer, JSON.stringify(answer));
    },
  );

  return server;
}

/** Serve one request: MCP at /mcp, 404 elsewhere. */
async function handle(request: Request, env?: unknown): Promise<Response> {
  if (new URL(request.url).pathname !== MCP_PATH) {
    return new Response("Not Found", { status: 404 });
  }
  const server = createServer(env);
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined, // stateless: no Mcp-Session-Id
    enableJsonResponse: true, // one JSON body per POST, no SSE stream
  });
  await server.connect(transport);
  try {
    // With JSON responses the transport answers once every reply is ready: nothing is left
    // running after this, so the server and transport can be closed right away.
    return await transport.handleRequest(request);
  } finally {
    await server.close();
  }
}

export default {
  fetch(request: Request, env?: unknown, _ctx?: unknown): Promise<Response> {
    return handle(request, env);
  },
};
