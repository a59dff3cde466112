"""A Secrets Manager endpoint on loopback: the local provider behind the Lambda shim's
cold-start secret read.

In the cloud the shim calls `secretsmanager:GetSecretValue` for each ARN in
`MCP_DEPLOY_SECRET_ARNS` with the function's role credentials. Locally the same SigV4 call
(the shim's own `mcp_deploy_secrets.py`, or the AWS SDKs of the Node runtime and the launcher)
reaches this server through `AWS_ENDPOINT_URL_SECRETS_MANAGER`. Values live only in this
process's memory; a caller must present the session token generated for this run (sent
as `X-Amz-Security-Token`), and, given a `peer` (`peers.RuntimePeer`), each connection
must come from the runtime process itself (checked once per connection; any other local
process, even one that learnt the token, is answered 403 and the connection closed). Only
127.0.0.1 is bound. A connection whose request does not arrive within `http1.HEAD_TIMEOUT`
(between requests too) is closed. Nothing is logged.
"""

from __future__ import annotations

import hmac
import json
import secrets
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from targets.aws_lambda import http1
from targets.aws_lambda.peers import RuntimePeer

ACCOUNT = "000000000000"


class _QuietServer(ThreadingHTTPServer):
    """Callers may hang up early; that is not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass(frozen=True)
class Credentials:
    """Throw-away credentials of one local run, in the shape Lambda gives a function."""

    access_key_id: str
    secret_access_key: str
    session_token: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls(
            "ASIA" + secrets.token_hex(8).upper(),
            secrets.token_urlsafe(30),
            secrets.token_urlsafe(48),
        )

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


def secret_arn(region: str, function_name: str, name: str) -> str:
    """The ARN a local secret is known by (`<function>/<NAME>` plus a suffix, like AWS's)."""
    return f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{function_name}/{name}-local"


class SecretsManagerStub:
    """`GetSecretValue` for a fixed set of ARN → value; use start()/stop()."""

    def __init__(
        self,
        values: Mapping[str, str],
        credentials: Credentials,
        peer: RuntimePeer | None = None,
    ) -> None:
        self._values = dict(values)
        self._token = credentials.session_token.encode()
        self._peer = peer
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SecretsManagerStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._values.clear()

    def answer(self, target: str, token: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for one call, as the real service would answer it."""
        if not hmac.compare_digest(token.encode(), self._token):
            return 403, {
                "__type": "UnrecognizedClientException",
                "message": "The security token included in the request is invalid.",
            }
        if target != "secretsmanager.GetSecretValue":
            return 400, {"__type": "UnknownOperationException", "message": target}
        try:
            secret_id = str(json.loads(body)["SecretId"])
        except (ValueError, KeyError, TypeError):
            return 400, {"__type": "ValidationException", "message": "SecretId is required"}
        if secret_id not in self._values:
            return 400, {
                "__type": "ResourceNotFoundException",
                "message": "Secrets Manager can't find the specified secret.",
            }
        return 200, {
            "ARN": secret_id,
            "Name": secret_id.split(":secret:", 1)[1],
            "SecretString": self._values[secret_id],
            "VersionId": "00000000-0000-0000-0000-000000000001",
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": time.time(),
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes
            timeout = http1.HEAD_TIMEOUT

            def handle(self) -> None:
                peer = stub._peer
                if peer is None or peer.admits(self.connection.getsockname(), self.client_address):
                    super().handle()
                else:
                    _refuse(self.connection)

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = stub.answer(
                    self.headers.get("X-Amz-Target", ""),
                    self.headers.get("X-Amz-Security-Token", ""),
                    body,
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


_FORBIDDEN = json.dumps(
    {
        "__type": "AccessDeniedException",
        "message": "only the function's runtime process may call this endpoint",
    }
).encode()


def _refuse(connection: socket.socket) -> None:
    """Answer 403 before reading the request, shut the write side, drop what the client still
    sends (bounded, like `http1.answer_and_close`) so it reads the 403, not a reset."""
    head = (
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/x-amz-json-1.1\r\n"
        f"Connection: close\r\nContent-Length: {len(_FORBIDDEN)}\r\n\r\n"
    )
    try:
        connection.sendall(head.encode() + _FORBIDDEN)
        connection.shutdown(socket.SHUT_WR)
        dropped, deadline = 0, time.monotonic() + 2.0
        while dropped < 1024 * 1024 and (left := deadline - time.monotonic()) > 0:
            connection.settimeout(left)
            chunk = connection.recv(65536)
            if not chunk:
                break
            dropped += len(chunk)
    except OSError:
        pass
