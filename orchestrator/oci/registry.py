"""A small client for the OCI distribution API: enough to pull a base image and push images
and artifacts by digest.

Authentication follows the registry's challenge: basic credentials, or a bearer token fetched
from the realm it names (with docker's credentials, see `credentials`). The registry's
Authorization header goes only to the registry's own origin (scheme, host and port): a
redirect elsewhere (blob downloads are sent to object storage or a CDN) is followed without
it, and a 401 from another origin is never answered with the registry's credentials.
Transient failures (connection errors, 429, 5xx) are retried with exponential backoff. Blobs
already present are not uploaded again; a blob upload that failed is retried in a new upload
session (see `RegistryClient.push_blob`).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, cast

from orchestrator.errors import OperationError
from orchestrator.oci.credentials import credentials_for
from orchestrator.oci.media import ACCEPT_ANY_MANIFEST
from orchestrator.oci.reference import Reference

RETRIES = 4
BACKOFF_SECONDS = 0.5


class RegistryError(OperationError):
    """A request to a registry failed: unreachable (after retries), refused, or answered
    with an unexpected status. The message names the request; the hint says what to check.
    `status` is the HTTP status of the last answer, None when there was none."""

    status: int | None = None


class Readable(Protocol):
    """What `RegistryClient.open_stream` streams from: `read` returns b"" at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str = ""  # where the answer came from, after redirects


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of `url`, the port made explicit."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


class _SameOriginCredentials(urllib.request.HTTPRedirectHandler):
    """Follows redirects like urllib, but drops the Authorization header when the redirect
    leaves the origin (scheme, host or port differs), as the OCI distribution clients do."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(new.full_url) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_SameOriginCredentials)


def _transient(status: int | None) -> bool:
    """Worth sending again: no answer at all, 408, 429 or a server error."""
    return status is None or status in (408, 429) or status >= 500


class RegistryClient:
    """One registry (`host[:port]`), one repository at a time."""

    def __init__(self, registry: str, scheme: str, sleep: Callable[[float], None] = time.sleep):
        self.registry = registry
        self.base = f"{scheme}://{registry}"
        self._authorization: str | None = None
        self._sleep = sleep

    @classmethod
    def for_reference(cls, reference: Reference) -> RegistryClient:
        return cls(reference.registry, reference.scheme)

    # -- transport ---------------------------------------------------------------------
    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Response:
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with _OPENER.open(request, timeout=120) as answer:
                return Response(answer.status, _lower(answer.headers), answer.read(), answer.url)
        except urllib.error.HTTPError as error:
            return Response(error.code, _lower(error.headers), error.read(), error.filename or url)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        scope: str = "",
        ok: tuple[int, ...] = (200,),
        attempts: int = RETRIES,
    ) -> Response:
        """Send with auth and retries; raise `RegistryError` unless the status is in `ok`.

        No answer, 408, 429 and 5xx are sent again, `attempts` sends in all, with exponential
        backoff in between. A 401 challenge from the registry's own origin is answered
        (credentials or a token) and the request sent again, at most twice, without counting
        as an attempt. Authorization is sent only to the registry's origin."""
        url = path if path.startswith("http") else self.base + path
        own = _origin(url) == _origin(self.base)
        failures = challenges = 0
        last: Exception | Response | None = None
        while True:
            wanted = dict(headers or {})
            if self._authorization and own:
                wanted["Authorization"] = self._authorization
            try:
                answer = self._send(method, url, body, wanted)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                last = exc
            else:
                if (
                    answer.status == 401
                    and own
                    and challenges < 2
                    and _origin(answer.url or url) == _origin(url)
                    and self._authenticate(answer, scope)
                ):
                    challenges += 1
                    continue
                if answer.status in ok:
                    return answer
                last = answer
                if not _transient(answer.status):
                    break
            failures += 1
            if failures >= attempts:
                break
            self._sleep(BACKOFF_SECONDS * 2 ** (failures - 1))
        raise _failure(method, url, last)

    def _authenticate(self, answer: Response, scope: str) -> bool:
        """Answer a 401 challenge; True when there is something new to retry with."""
        challenge = answer.headers.get("www-authenticate", "")
        credentials = credentials_for(self.registry)
        if challenge.lower().startswith("basic") and credentials:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            fresh = f"Basic {token}"
        elif challenge.lower().startswith("bearer"):
            fresh = self._bearer_token(challenge, scope, credentials)
        else:
            return False
        if fresh == self._authorization:
            return False
        self._authorization = fresh
        return True

    def _bearer_token(self, challenge: str, scope: str, credentials: tuple[str, str] | None) -> str:
        fields = dict(part.split("=", 1) for part in _split_challenge(challenge[len("bearer ") :]))
        params = {"service": fields.get("service", "")}
        if scope or fields.get("scope"):
            params["scope"] = scope or fields["scope"]
        url = fields.get("realm", "") + "?" + urllib.parse.urlencode(params)
        headers = {}
        if credentials:
            encoded = base64.b64encode(":".join(credentials).encode()).decode()
            headers["Authorization"] = f"Basic {encoded}"
        try:
            answer = self._send("GET", url, None, headers)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise RegistryError(
                f"the token service of {self.registry} ({fields.get('realm', '')}) is "
                f"unreachable: {exc}",
                hint="is the registry reachable?",
            ) from None
        if answer.status != 200:
            raise RegistryError(
                f"the registry {self.registry} refused to issue a token ({answer.status})",
                hint="log in with 'docker login' (mcp-deploy uses docker's credentials)",
            )
        data = json.loads(answer.body)
        return "Bearer " + str(data.get("token") or data.get("access_token"))

    # -- manifests and blobs -----------------------------------------------------------
    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index; the digest is verified."""
        answer = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            headers={"Accept": ACCEPT_ANY_MANIFEST},
            scope=f"repository:{repository}:pull",
        )
        digest = "sha256:" + hashlib.sha256(answer.body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise OperationError(f"{self.registry}/{repository}@{reference}: digest mismatch")
        media_type = json.loads(answer.body).get("mediaType") or answer.headers.get(
            "content-type", ""
        )
        return answer.body, media_type, digest

    def fetch_blob(self, repository: str, digest: str) -> bytes:
        """The bytes of a blob, verified against its digest (`OperationError` otherwise)."""
        answer = self.request(
            "GET", f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull"
        )
        if "sha256:" + hashlib.sha256(answer.body).hexdigest() != digest:
            raise OperationError(f"{self.registry}/{repository}: blob {digest} is corrupt")
        return answer.body

    def get_blob(self, repository: str, digest: str, destination: Path) -> None:
        """Download a blob to `destination`, verifying its digest."""
        data = self.fetch_blob(repository, digest)
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(destination)

    def has_blob(self, repository: str, digest: str) -> bool:
        answer = self.request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            ok=(200, 404),
            scope=f"repository:{repository}:pull,push",
        )
        return answer.status == 200

    def push_blob(self, repository: str, digest: str, data: bytes) -> bool:
        """Upload a blob unless present; True when this call uploaded it.

        Each attempt opens a new upload session (POST) and sends the blob in one PUT, which
        is sent once. A PUT whose reply is lost may have completed on the registry, closing
        its session: so before trying again the registry is asked whether it has the blob
        now (HEAD), and otherwise a new session is opened; a finished session's URL is never
        used again (it would answer BLOB_UPLOAD_UNKNOWN). A PUT that got no answer, 404 (the
        session is gone), 408, 429 or 5xx is tried again, `RETRIES` attempts in all, with
        backoff; other refusals (e.g. DIGEST_INVALID) raise `RegistryError` at once."""
        if self.has_blob(repository, digest):
            return False
        scope = f"repository:{repository}:pull,push"
        last: RegistryError | None = None
        for attempt in range(RETRIES):
            if attempt:
                self._sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
                if self.has_blob(repository, digest):
                    return True
            uploads = f"/v2/{repository}/blobs/uploads/"
            start = self.request("POST", uploads, ok=(202,), scope=scope)
            location = urllib.parse.urljoin(self.base + uploads, start.headers.get("location", ""))
            separator = "&" if "?" in location else "?"
            try:
                self.request(
                    "PUT",
                    f"{location}{separator}digest={urllib.parse.quote(digest)}",
                    body=data,
                    headers={"Content-Type": "application/octet-stream"},
                    ok=(201,),
                    scope=scope,
                    attempts=1,
                )
            except RegistryError as error:
                if not (_transient(error.status) or error.status == 404):
                    raise
                last = error
            else:
                return True
        assert last is not None
        raise last

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """Store a manifest under a tag or its digest; returns its digest."""
        self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            body=data,
            headers={"Content-Type": media_type},
            ok=(201,),
            scope=f"repository:{repository}:pull,push",
        )
        return "sha256:" + hashlib.sha256(data).hexdigest()

    # -- streams (copy by digest) ------------------------------------------------------
    def open_stream(
        self,
        method: str,
        path: str,
        *,
        body: Readable | None = None,
        size: int = 0,
        headers: dict[str, str] | None = None,
        scope: str = "",
        ok: tuple[int, ...] = (200,),
    ) -> http.client.HTTPResponse:
        """Like `request`, but the answer is returned unread (the caller reads and closes it)
        and `body`, `size` bytes, is streamed rather than held in memory. Without a body,
        failures are retried and a 401 challenge answered as in `request`. A streamed body
        can be sent only once: with one, any failure raises `RegistryError` at once (a
        challenge is answered first, so the next request carries the credentials).
        Exceptions raised by `body.read` itself propagate unchanged."""
        url = path if path.startswith("http") else self.base + path
        own = _origin(url) == _origin(self.base)
        failures = challenges = 0
        while True:
            wanted = dict(headers or {})
            if body is not None:
                wanted["Content-Length"] = str(size)
            if self._authorization and own:
                wanted["Authorization"] = self._authorization
            request = urllib.request.Request(url, data=body, method=method, headers=wanted)
            last: Exception | Response
            try:
                answer = _OPENER.open(request, timeout=120)
            except urllib.error.HTTPError as error:
                last = Response(
                    error.code, _lower(error.headers), error.read(), error.filename or url
                )
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                last = exc
            else:
                if answer.status in ok:
                    return cast(http.client.HTTPResponse, answer)
                last = Response(answer.status, _lower(answer.headers), answer.read(), answer.url)
                answer.close()
            status = last.status if isinstance(last, Response) else None
            if (
                isinstance(last, Response)
                and last.status == 401
                and own
                and challenges < 2
                and _origin(last.url or url) == _origin(url)
                and self._authenticate(last, scope)
            ):
                challenges += 1
                if body is None:
                    continue
            failures += 1
            if body is not None or not _transient(status) or failures >= RETRIES:
                raise _failure(method, url, last)
            self._sleep(BACKOFF_SECONDS * 2 ** (failures - 1))


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()} if headers else {}


def _split_challenge(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return [p for p in parts if "=" in p]


def _failure(method: str, url: str, last: Exception | Response | None) -> RegistryError:
    error: RegistryError
    if isinstance(last, Response):
        detail = last.body.decode("utf-8", "replace")[:1000]
        hint = None
        if last.status in (401, 403):
            hint = (
                "check your registry login ('docker login'); mcp-deploy uses docker's credentials"
            )
        error = RegistryError(f"{method} {url} failed with HTTP {last.status}", hint, detail)
        error.status = last.status
        return error
    return RegistryError(
        f"{method} {url} failed: {last}",
        hint="is the registry reachable? transient errors were retried",
    )
