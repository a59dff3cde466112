"""`WWW-Authenticate` parsing (RFC 9110 §11.6.1 / RFC 7235 grammar, RFC 6750 and RFC 9728
parameters), and whether a protected resource's identifier covers a URL.

    WWW-Authenticate = #challenge
    challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param       = token BWS "=" BWS ( token / quoted-string )

Several challenges may share one header value (separated by commas, like their parameters)
or come in several header values. Scheme and parameter names are case-insensitive (returned
lower-cased); quoted-string values are unescaped. A malformed remainder ends the parse: what
was read before it is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SPACE = " \t"


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-cased
    params: dict[str, str] = field(default_factory=dict)  # names lower-cased
    token68: str | None = None


def _skip(text: str, at: int, chars: str) -> int:
    while at < len(text) and text[at] in chars:
        at += 1
    return at


def _quoted(text: str, at: int) -> tuple[str, int] | None:
    """(value, position after the closing quote) of the quoted-string at `at`."""
    out: list[str] = []
    at += 1
    while at < len(text):
        char = text[at]
        if char == "\\" and at + 1 < len(text):
            out.append(text[at + 1])
            at += 2
        elif char == '"':
            return "".join(out), at + 1
        else:
            out.append(char)
            at += 1
    return None  # unterminated


def _param(text: str, at: int) -> tuple[str, str, int] | None:
    """(name, value, position after it) of the auth-param at `at`, or None."""
    name = _TOKEN.match(text, at)
    if name is None:
        return None
    after = _skip(text, name.end(), _SPACE)
    if after >= len(text) or text[after] != "=":
        return None
    after = _skip(text, after + 1, _SPACE)
    if after < len(text) and text[after] == '"':
        quoted = _quoted(text, after)
        if quoted is None:
            return None
        return name.group().lower(), quoted[0], quoted[1]
    value = _TOKEN.match(text, after)
    if value is None:
        return None
    return name.group().lower(), value.group(), value.end()


def _at_item_end(text: str, at: int) -> bool:
    at = _skip(text, at, _SPACE)
    return at >= len(text) or text[at] == ","


def parse_challenges(values: list[str]) -> list[Challenge]:
    """Every challenge in the header values `values` (see the module docstring)."""
    found: list[Challenge] = []
    for text in values:
        at = 0
        while True:
            at = _skip(text, at, _SPACE + ",")
            scheme = _TOKEN.match(text, at)
            if scheme is None:
                break
            at = scheme.end()
            params: dict[str, str] = {}
            token68: str | None = None
            if at < len(text) and text[at] in _SPACE:
                at = _skip(text, at, _SPACE)
                first = _param(text, at)
                blob = _TOKEN68.match(text, at)
                if first is None and blob is not None and _at_item_end(text, blob.end()):
                    token68, at = blob.group(), blob.end()
                while first is not None:
                    name, value, at = first
                    params.setdefault(name, value)
                    probe = _skip(text, at, _SPACE)
                    if probe >= len(text) or text[probe] != ",":
                        at = probe
                        break
                    # after a comma: another parameter, or the next challenge's scheme
                    after = _skip(text, probe, _SPACE + ",")
                    first = _param(text, after)
                    at = after if first is not None else probe
            found.append(Challenge(scheme.group().lower(), params, token68))
            if at < len(text) and text[at] not in _SPACE + ",":
                break  # malformed: stop here
    return found


def bearer(challenges: list[Challenge]) -> Challenge | None:
    """The first Bearer challenge."""
    return next((c for c in challenges if c.scheme == "bearer"), None)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = parts.port if parts.port is not None else default
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def covers(resource: str, url: str) -> bool:
    """Whether protected-resource identifier `resource` names the server at `url`, as MCP
    clients check it (the TypeScript SDK's `checkResourceAllowed`): the same origin (scheme,
    host, port; case-insensitive host) and `resource`'s path a prefix of `url`'s path on a
    segment boundary (trailing slashes aside)."""
    try:
        if _origin(resource) != _origin(url) or urlsplit(resource).fragment:
            return False
    except ValueError:
        return False
    mine = urlsplit(resource).path.rstrip("/")
    theirs = urlsplit(url).path.rstrip("/")
    return theirs == mine or theirs.startswith(mine + "/")


def well_known_locations(url: str) -> list[str]:
    """Where RFC 9728 / MCP clients look for a resource's metadata when the challenge names
    none: the path-suffixed well-known URL, then the root one."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource"
    path = parts.path.rstrip("/")
    return [base + path, base] if path else [base]


def issuer_metadata_locations(issuer: str) -> list[str]:
    """Where an authorization server's metadata is, in the order MCP (2025-11-25) clients
    try: RFC 8414 with the issuer's path inserted, OpenID Connect Discovery with it inserted,
    then appended; for an issuer without a path, RFC 8414 then OIDC."""
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    if not path:
        return [
            f"{origin}/.well-known/oauth-authorization-server",
            f"{origin}/.well-known/openid-configuration",
        ]
    return [
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{origin}/.well-known/openid-configuration{path}",
        f"{origin}{path}/.well-known/openid-configuration",
    ]
