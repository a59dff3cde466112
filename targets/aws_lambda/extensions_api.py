"""The Lambda Extensions API (version 2020-01-01), served next to the Runtime API.

Lambda serves both APIs at `AWS_LAMBDA_RUNTIME_API`; so does the local emulation: the Runtime
API's server hands every `/2020-01-01/extension/...` request to `ExtensionsAPI.answer`, on its
event loop (every method here runs on that loop), behind the same peer check.

What an extension does, and what it gets (as Lambda, and AWS's runtime interface emulator):

- `POST /register` with `Lambda-Extension-Name` and `{"events": [...]}` (INVOKE, SHUTDOWN):
  200, a `Lambda-Extension-Identifier` header and `{functionName, functionVersion, handler}`
  (plus `accountId` with `Lambda-Extension-Accept-Feature: accountId`). A name that is one of
  the executables started from /opt/extensions registers that external extension (once); any
  other name registers an internal extension (one the runtime process runs), which may
  subscribe to INVOKE only and only while registration is open, i.e. until the runtime has
  asked for its first invocation.
- `GET /event/next`: waits for the next event the extension subscribed to: `INVOKE`
  (requestId, deadlineMs, invokedFunctionArn, tracing) for each invocation, `SHUTDOWN`
  (shutdownReason, deadlineMs) when the environment ends. An extension subscribed to nothing
  waits until it is ended. Each call says the extension is done with the previous event.
- `POST /init/error` and `POST /exit/error` with `Lambda-Extension-Function-Error-Type`:
  202; the error fails the init (`Extension.InitError`) or ends the environment
  (`Extension.ExitError`).
- Every call but register needs a known `Lambda-Extension-Identifier`: missing, malformed or
  unknown is 403 with Lambda's error types. Errors are JSON `{errorMessage, errorType}`.

Not emulated: the Telemetry and Logs APIs (`/2022-07-01/telemetry`, `/2020-08-15/logs`),
which answer 404.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from targets.aws_lambda.http1 import Request, response

PREFIX = "/2020-01-01/extension"
EVENT_TYPES = ("INVOKE", "SHUTDOWN")
ACCOUNT = "000000000000"
_JSON = {"Content-Type": "application/json"}


@dataclass
class Extension:
    """One registered extension, as the API tracks it.

    `state` follows Lambda's names: Registered, Ready (waiting in event/next), Running (has
    an event and has not asked for the next one), InitError, ExitError."""

    name: str
    external: bool
    identifier: str = field(default_factory=lambda: str(uuid.uuid4()))
    events: tuple[str, ...] = ()
    state: str = "Registered"
    error_type: str | None = None
    _pending: deque[bytes] = field(default_factory=deque, repr=False)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _gone: bool = False

    def deliver(self, event: bytes) -> None:
        """Queue `event` for the extension's next (or current) event/next call."""
        self._pending.append(event)
        self._wakeup.set()

    @property
    def ready(self) -> bool:
        """Waiting in event/next with nothing left to deliver."""
        return self.state == "Ready" and not self._pending

    def log_line(self) -> str:
        """The line Lambda writes to the function's log for this extension after init."""
        return (
            f"EXTENSION\tName: {self.name}\tState: {self.state}\tEvents: [{','.join(self.events)}]"
        )


def _error(status: int, error_type: str, message: str) -> bytes:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return response(status, body, _JSON)


class ExtensionsAPI:
    """The Extensions API of one function; `begin()` starts each execution environment's
    registration phase, `end()` forgets the environment."""

    def __init__(self, function_name: str, handler: str, version: str = "$LATEST") -> None:
        self.function_name = function_name
        self.handler = handler
        self.version = version
        self._external: set[str] = set()
        self._extensions: dict[str, Extension] = {}  # by identifier
        self._open = False
        self.failure: tuple[str, str] | None = None  # (error type, message), first one wins

    # -- the emulator's side (on the loop) --------------------------------------------------

    def begin(self, external_names: Iterable[str]) -> None:
        """A new execution environment: these executables of /opt/extensions were started;
        registration is open."""
        self.end()
        self._external = set(external_names)
        self._open = True
        self.failure = None

    def end(self) -> None:
        """The environment is gone: forget its extensions, release their pending calls."""
        for extension in self._extensions.values():
            extension._gone = True
            extension._wakeup.set()
        self._extensions = {}
        self._external = set()
        self._open = False

    def close_registration(self) -> None:
        """The runtime asked for its first invocation: no more registrations."""
        self._open = False

    @property
    def registered(self) -> list[Extension]:
        """The registered extensions, external ones first, each group in registration order."""
        found = list(self._extensions.values())
        return [e for e in found if e.external] + [e for e in found if not e.external]

    def all_external_registered(self) -> bool:
        """True once every started external extension has registered."""
        names = {e.name for e in self._extensions.values() if e.external}
        return names >= self._external

    def unregistered(self) -> list[str]:
        """The started external extensions that have not registered."""
        names = {e.name for e in self._extensions.values() if e.external}
        return sorted(self._external - names)

    def log_lines(self) -> list[str]:
        """The EXTENSION lines Lambda writes at the end of init: every registered extension,
        then the started ones that never registered (state Launched)."""
        lines = [extension.log_line() for extension in self.registered]
        lines += [
            f"EXTENSION\tName: {name}\tState: Launched\tEvents: []" for name in self.unregistered()
        ]
        return lines

    def all_ready(self, event: str | None = None) -> bool:
        """True when every registered extension (subscribed to `event`, if given) waits in
        event/next with nothing to deliver."""
        return all(e.ready for e in self.subscribed(event))

    def subscribed(self, event: str | None) -> list[Extension]:
        """The registered extensions subscribed to `event` (all of them when None)."""
        return [e for e in self.registered if event is None or event in e.events]

    def deliver_invoke(
        self, request_id: str, deadline_ms: int, function_arn: str, trace_id: str
    ) -> None:
        """Send INVOKE to every extension subscribed to it."""
        event = {
            "eventType": "INVOKE",
            "deadlineMs": deadline_ms,
            "requestId": request_id,
            "invokedFunctionArn": function_arn,
            "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id},
        }
        data = json.dumps(event).encode()
        for extension in self.subscribed("INVOKE"):
            extension.deliver(data)

    def deliver_shutdown(self, reason: str, deadline_ms: int) -> list[str]:
        """Send SHUTDOWN to every external extension subscribed to it; their names."""
        event = {"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline_ms}
        data = json.dumps(event).encode()
        names = []
        for extension in self.subscribed("SHUTDOWN"):
            extension.deliver(data)
            names.append(extension.name)
        return names

    def _fail(self, error_type: str, message: str) -> None:
        if self.failure is None:
            self.failure = (error_type, message)

    # -- HTTP -------------------------------------------------------------------------------

    async def answer(self, request: Request) -> bytes:
        """The response to one request under `/2020-01-01/extension/`."""
        action = request.target.split("?", 1)[0].removeprefix(PREFIX)
        if request.method == "POST" and action == "/register":
            return self._register(request)
        routes = {
            ("GET", "/event/next"): self._next,
            ("POST", "/init/error"): self._init_error,
            ("POST", "/exit/error"): self._exit_error,
        }
        handler = routes.get((request.method, action))
        if handler is None:
            return response(404)
        identifier = request.header("lambda-extension-identifier")
        if not identifier:
            return _error(
                403,
                "Extension.MissingExtensionIdentifier",
                "Missing Lambda-Extension-Identifier header",
            )
        try:
            uuid.UUID(identifier)
        except ValueError:
            return _error(
                403,
                "Extension.InvalidExtensionIdentifier",
                "Invalid Lambda-Extension-Identifier",
            )
        extension = self._extensions.get(identifier)
        if extension is None:
            return _error(
                403, "Extension.UnknownExtensionIdentifier", f"Unknown extension {identifier}"
            )
        return await handler(extension, request)

    def _register(self, request: Request) -> bytes:
        name = request.header("lambda-extension-name")
        if not name:
            return _error(403, "Extension.InvalidExtensionName", "Empty extension name")
        try:
            body = json.loads(request.body or b"{}")
            events = body.get("events") or []
            if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
                raise ValueError("events must be a list of strings")
        except (ValueError, AttributeError) as error:
            return _error(403, "InvalidRequestFormat", str(error))
        if body.get("configurationKeys"):
            return _error(
                403,
                "InvalidRequestFormat",
                "configurationKeys are deprecated; use environment variables instead",
            )
        external = name in self._external
        allowed = EVENT_TYPES if external else ("INVOKE",)
        for event in events:
            if event not in allowed:
                return _error(
                    403,
                    "Extension.InvalidEventType",
                    f"{event}: not an event an {'external' if external else 'internal'} "
                    "extension may subscribe to",
                )
        taken = any(e.name == name for e in self._extensions.values())
        if not self._open:
            if external and taken:
                return _error(
                    403, "Extension.InvalidExtensionState", f"{name} is registered already"
                )
            return _error(
                403, "Extension.RegistrationClosed", "Extension registration closed already"
            )
        if taken:
            return _error(
                403,
                "Extension.InvalidExtensionState",
                "Extension with this name already registered",
            )
        extension = Extension(name, external, events=tuple(dict.fromkeys(events)))
        self._extensions[extension.identifier] = extension
        answer: dict[str, str] = {
            "functionName": self.function_name,
            "functionVersion": self.version,
            "handler": self.handler,
        }
        if "accountId" in request.header("lambda-extension-accept-feature"):
            answer["accountId"] = ACCOUNT
        headers = {**_JSON, "Lambda-Extension-Identifier": extension.identifier}
        return response(200, json.dumps(answer).encode(), headers)

    async def _next(self, extension: Extension, request: Request) -> bytes:
        if extension.state not in ("Registered", "Running"):
            return _error(
                403,
                "Extension.InvalidExtensionState",
                f"State transition from {extension.state} to Ready failed for extension "
                f"{extension.identifier}",
            )
        extension.state = "Ready"
        while not extension._pending:
            extension._wakeup.clear()
            if extension._gone:
                return _error(403, "Extension.UnknownExtensionIdentifier", "environment ended")
            await extension._wakeup.wait()
        if extension._gone:
            return _error(403, "Extension.UnknownExtensionIdentifier", "environment ended")
        event = extension._pending.popleft()
        extension.state = "Running"
        headers = {**_JSON, "Lambda-Extension-Event-Identifier": str(uuid.uuid4())}
        return response(200, event, headers)

    def _error_type(self, request: Request) -> str | None:
        return request.header("lambda-extension-function-error-type") or None

    async def _init_error(self, extension: Extension, request: Request) -> bytes:
        error_type = self._error_type(request)
        if error_type is None:
            return _error(
                403,
                "Extension.MissingHeader",
                "Lambda-Extension-Function-Error-Type not found",
            )
        if extension.state != "Registered":
            return _error(
                403,
                "Extension.InvalidExtensionState",
                f"State transition from {extension.state} to InitError failed for extension "
                f"{extension.identifier}",
            )
        extension.state, extension.error_type = "InitError", error_type
        self._fail("Extension.InitError", f"extension {extension.name} reported {error_type}")
        return response(202, b'{"status":"OK"}', _JSON)

    async def _exit_error(self, extension: Extension, request: Request) -> bytes:
        error_type = self._error_type(request)
        if error_type is None:
            return _error(
                403,
                "Extension.MissingHeader",
                "Lambda-Extension-Function-Error-Type not found",
            )
        extension.state, extension.error_type = "ExitError", error_type
        self._fail("Extension.ExitError", f"extension {extension.name} reported {error_type}")
        return response(202, b'{"status":"OK"}', _JSON)
