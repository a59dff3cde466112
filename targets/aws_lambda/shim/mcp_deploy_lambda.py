"""Lambda entry of an mcp-deploy artifact (handler `mcp_deploy_lambda.handler`).

Goes into the zip, next to the server's code and its vendored dependencies. At cold start
(module import, Lambda's init phase) it:
1. reads `mcp_deploy_runtime.json` through `mcp_deploy_gate` (entry, paths, auth mode);
2. if the deployment configured `MCP_DEPLOY_SECRET_ARNS` (a JSON object NAME → Secrets
   Manager ARN), reads each secret (in parallel, with `mcp_deploy_secrets`: a SigV4-signed
   GetSecretValue, no AWS SDK) and sets environment variable NAME to its value; when any
   cannot be read, the init fails with a `SecretsError` whose message has one line per
   failed secret (its variable, its ARN, AWS's error code and a hint; never a value);
3. imports the ASGI app and enters its lifespan once, on a loop kept for the process's life.

Each invocation (a Function URL / HTTP API payload 2.0 event) passes the gate of
`mcp_deploy_gate` — the Origin check; for `bearer`, the `Authorization: Bearer <token>` header
compared in constant time with the token secret; for `oauth`, the Protected Resource Metadata
answered and the access token verified (the issuer's keys fetched in the invocation that
needs them); repeated Authorization headers (which the Function URL joins with commas) refused
with 400 — with `https://` + the event's `requestContext.domainName` as the platform's base
URL. It is then handed to the app through Mangum as a loopback request: Host
`127.0.0.1:<PORT or 8080>`, no Origin, the original host and scheme in X-Forwarded-Host /
X-Forwarded-Proto.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
from typing import TYPE_CHECKING, Any

from mangum import Mangum
from mangum.protocols import LifespanCycle
from mcp_deploy_gate import Answer, Gate, first, import_app, runtime_config

if TYPE_CHECKING:
    from .mcp_deploy_secrets import SecretsError

SECRET_ARNS_VARIABLE = "MCP_DEPLOY_SECRET_ARNS"


def load_secrets_from_secrets_manager() -> SecretsError | None:
    """Set each configured secret as an environment variable of the same name; the error
    (without its traceback, which holds nothing the message does not say) when any cannot be
    read: the caller raises it at module level, so the init error names the secrets only."""
    raw = os.environ.get(SECRET_ARNS_VARIABLE)
    if not raw:
        return None
    if TYPE_CHECKING or __package__:  # imported from the repository
        from .mcp_deploy_secrets import SecretsError, read_secrets
    else:  # in the zip: imported only by functions that have secrets
        from mcp_deploy_secrets import SecretsError, read_secrets
    try:
        arns = json.loads(raw)
    except ValueError:
        arns = None
    try:
        if not isinstance(arns, dict):
            raise SecretsError(
                f"cannot read secrets: {SECRET_ARNS_VARIABLE} is not a JSON object of "
                "NAME → secret ARN"
            )
        os.environ.update(read_secrets(arns))
    except SecretsError as error:
        return error.with_traceback(None)
    return None


class _WithLifespanState:
    """Give each request scope a copy of the lifespan state, as ASGI servers do."""

    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "state": dict(self.state)}
        await self.app(scope, receive, send)


class LifespanOnce:
    """Mangum with the ASGI lifespan entered once per execution environment.

    Mangum's own lifespan support runs startup and shutdown around every invocation, which
    costs time and breaks apps whose startup may run only once (the MCP SDK's session
    manager). Here startup runs at cold start on a persistent event loop; requests run on
    that same loop; shutdown runs when the process exits.
    """

    def __init__(self, app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self._lifespan: LifespanCycle | None = LifespanCycle(app, "auto")
        self._lifespan.__enter__()
        state = dict(self._lifespan.lifespan_state)
        self._mangum = Mangum(_WithLifespanState(app, state), lifespan="off")
        atexit.register(self.close)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        asyncio.set_event_loop(self.loop)
        return self._mangum(event, context)

    def close(self) -> None:
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is not None and not self.loop.is_closed():
            lifespan.__exit__(None, None, None)
            self.loop.close()


def _fields(headers: dict[str, Any]) -> dict[str, list[str]]:
    """Every header value by lowercase name (payload 2.0 has one per name, commas joining
    repeats; other event sources may spell a name in more than one case)."""
    fields: dict[str, list[str]] = {}
    for name, value in headers.items():
        fields.setdefault(str(name).lower(), []).append(str(value))
    return fields


def _response(answer: Answer) -> dict[str, Any]:
    return {
        "statusCode": answer.status,
        "headers": dict(answer.headers),
        "body": answer.body.decode(),
        "isBase64Encoded": False,
    }


# A GET on the MCP path asks for a server-sent-event stream; a Lambda invocation cannot hold
# one open, and stateless servers may refuse it (MCP streamable HTTP): answer 405 at once.
NO_STREAM: dict[str, Any] = {
    "statusCode": 405,
    "headers": {"allow": "POST, DELETE", "content-type": "application/json"},
    "body": '{"error": "this server answers POST requests only (stateless, JSON responses)"}',
    "isBase64Encoded": False,
}

_config = runtime_config()
if (_secrets_failure := load_secrets_from_secrets_manager()) is not None:
    raise _secrets_failure  # Lambda logs it and reports the init error
_gate = Gate(_config)
_adapter = LifespanOnce(import_app(_config["entry"]))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the gate, then the request served by the server's ASGI app."""
    path = str(event.get("rawPath", ""))
    request_context = event.get("requestContext") or {}
    method = str((request_context.get("http") or {}).get("method", ""))
    headers = event.get("headers") or {}
    fields = _fields(headers)
    host = first(fields, "host") or str(request_context.get("domainName", ""))
    domain = str(request_context.get("domainName", "")) or host
    answer = _gate.check(method, path, fields, f"https://{domain}")
    if answer is not None:
        return _response(answer)
    if method == "GET" and path == _config["path"]:
        return dict(NO_STREAM)
    proto = first(fields, "x-forwarded-proto") or "https"
    presented = _gate.loopback_headers(list(headers.items()), host, proto)
    return _adapter({**event, "headers": dict(presented)}, context)
