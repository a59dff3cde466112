"""The Function URL front door of the local Lambda: HTTP/1.1 in, payload 2.0 events out.

Each request becomes the event a Function URL sends (`events.function_url_event`: lowercased
headers, repeated headers joined with commas, cookies, query parameters, base64 for binary
bodies; `Host` is the Function URL's domain) and the handler's response becomes HTTP again
(status, headers, one `Set-Cookie` per cookie). As on AWS:

- a request body over 6 MB is answered 413 with AWS's JSON message and the connection is
  closed cleanly (`http1.answer_and_close`: the rest of the body is read and dropped, within
  bounds, so the client receives the 413 rather than a reset); a response over 6 MB is
  answered 502;
- any failed invocation (handler error, timeout, runtime exit, init failure) is answered 502
  `{"Message":"Internal Server Error"}`; a return value without `statusCode` is a 200 JSON body.

Connections: a request head must arrive within `http1.HEAD_TIMEOUT` of its first byte (else
408 and close), and a connection idle for `IDLE_TIMEOUT` between requests is closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from targets.aws_lambda import http1
from targets.aws_lambda.events import function_url_event, response_body
from targets.aws_lambda.runtime_api import Outcome

MAX_PAYLOAD = 6 * 1024 * 1024  # Lambda's synchronous request and response limit
IDLE_TIMEOUT = 60.0  # seconds a keep-alive connection may wait for its next request
INTERNAL_ERROR = b'{"Message":"Internal Server Error"}'
TOO_LARGE = b'{"Message":"Request must be smaller than 6291456 bytes"}'
JSON = {"Content-Type": "application/json"}
_HOP_HEADERS = {"connection", "content-length", "transfer-encoding", "keep-alive"}

Invoke = Callable[[dict[str, Any]], Awaitable[Outcome]]


class FunctionURL:
    """The front door of one function: `connection` serves one accepted client connection,
    handing each request's event to `invoke` (one invocation per request)."""

    def __init__(self, invoke: Invoke, domain: str) -> None:
        self._invoke = invoke
        self.domain = domain

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = str((writer.get_extra_info("peername") or ("127.0.0.1", 0))[0])

        async def answer(request: http1.Request) -> bytes:
            return await self.serve(request, client)

        too_large = http1.response(413, TOO_LARGE, JSON, [("Connection", "close")])
        await http1.serve_connection(
            reader,
            writer,
            answer,
            MAX_PAYLOAD,
            too_large,
            head_timeout=http1.HEAD_TIMEOUT,
            idle_timeout=IDLE_TIMEOUT,
        )

    async def serve(self, request: http1.Request, client: str) -> bytes:
        """The whole HTTP response to one request, as the Function URL would give it."""
        path, _, query = request.target.partition("?")
        headers: dict[str, str] = {}
        for name, value in request.headers:
            key = name.lower()
            if key != "host":
                headers[key] = f"{headers[key]},{value}" if key in headers else value
        headers["x-forwarded-host"] = request.header("host")
        headers["x-forwarded-for"] = client
        headers["x-forwarded-proto"] = "http"
        event = function_url_event(
            request.method,
            path,
            headers=headers,
            body=request.body,
            query=query,
            source_ip=client,
            domain=self.domain,
        )
        outcome = await self._invoke(event)
        head_only = request.method == "HEAD"
        if outcome.kind != "response":
            return http1.response(502, INTERNAL_ERROR, JSON, head_only=head_only)
        try:
            result = outcome.json()
        except ValueError:
            return http1.response(502, INTERNAL_ERROR, JSON, head_only=head_only)
        if not isinstance(result, dict) or "statusCode" not in result:
            # Lambda infers a 200 JSON response from any other return value.
            return http1.response(200, json.dumps(result).encode(), JSON, head_only=head_only)
        data = response_body(result)
        if len(data) > MAX_PAYLOAD:
            return http1.response(502, INTERNAL_ERROR, JSON, head_only=head_only)
        kept = {
            str(name): str(value)
            for name, value in (result.get("headers") or {}).items()
            if str(name).lower() not in _HOP_HEADERS
        }
        cookies = [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
        return http1.response(int(result["statusCode"]), data, kept, cookies, head_only=head_only)
