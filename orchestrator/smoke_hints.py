"""What to tell a person whose server refused the Host a platform presents (421), or lost its
MCP session: code that is right for the SDK the artifact holds (official `mcp` 1.x or 2.x,
`fastmcp`), naming the host."""

from __future__ import annotations

import re
from collections.abc import Mapping


def _version(text: str) -> tuple[int, ...]:
    """(1, 26, 0) for '1.26.0', (1,) for '1.x'."""
    numbers = []
    for part in text.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        numbers.append(int(digits.group()))
    return tuple(numbers)


_SETTINGS = "from mcp.server.transport_security import TransportSecuritySettings"
_MATCHING = (
    'An entry matches one Host exactly, or any port with "name:*" (no subdomain wildcard); '
    "passing the list replaces the loopback defaults."
)
_ENVIRONMENTS = (
    "The SDK's defaults need no change behind mcp-deploy: its shims check the Origin "
    "themselves and present each request as a loopback one (Host 127.0.0.1:<port>); a list "
    'of your own must keep "127.0.0.1:*".'
)


def _hosts(host: str) -> str:
    return f'allowed_hosts=["{host}", "127.0.0.1:*", "localhost:*"]'


def _mcp1_hint(host: str, version: str, fastmcp: str | None) -> str:
    return (
        (f"this 421 is the official SDK's check, not fastmcp {fastmcp}'s. " if fastmcp else "")
        + f"mcp {version} takes transport_security in FastMCP(...) (its "
        "streamable_http_app() takes no arguments):\n"
        "    from mcp.server.fastmcp import FastMCP\n"
        f"    {_SETTINGS}\n"
        '    mcp = FastMCP("name", transport_security=TransportSecuritySettings(\n'
        f"        {_hosts(host)},\n    ))\n"
        f"{_MATCHING} {_ENVIRONMENTS}"
    )


def _mcp2_hint(host: str, version: str) -> str:
    return (
        f"mcp {version} takes transport_security in streamable_http_app(...):\n"
        f"    {_SETTINGS}\n"
        "    app = mcp.streamable_http_app(transport_security=TransportSecuritySettings(\n"
        f"        {_hosts(host)},\n    ))\n"
        f"{_MATCHING} {_ENVIRONMENTS}"
    )


def _fastmcp_hint(host: str, version: str) -> str:
    return (
        f"fastmcp {version} checks the Host itself; allow it in http_app(...):\n"
        f'    app = mcp.http_app(allowed_hosts=["{host}"])\n'
        f"or set FASTMCP_HTTP_ALLOWED_HOSTS='[\"{host}\"]' in the environment's config. Entries "
        'are patterns ("*.run.app" matches every Cloud Run host); loopback names stay allowed.'
    )


def host_hint(host: str, sdk: Mapping[str, str] | None, refused_by: str | None = None) -> str:
    """What to write so that a server allows the Host `host`, for the MCP SDK distributions
    in its artifact (`sdk`: {"mcp": "1.26.0"}, {"fastmcp": "2.12.0", "mcp": "1.x"}; None or
    {} when unknown: both official SDK majors). `refused_by` says whose check answered the
    421 when its body told ("mcp": "Invalid Host header"; "fastmcp": "Misdirected Request")."""
    fast, official = (sdk or {}).get("fastmcp"), (sdk or {}).get("mcp")
    if fast and refused_by != "mcp" and (refused_by == "fastmcp" or _version(fast) >= (3, 4, 3)):
        return _fastmcp_hint(host, fast)
    if official and _version(official) >= (2,):
        return _mcp2_hint(host, official)
    if official and (_version(official) >= (1, 10) or len(_version(official)) < 2):
        return _mcp1_hint(host, official, fast)
    if official:
        return (
            f"mcp {official} has no DNS-rebinding check: the 421 for {host} comes from the "
            "app's own middleware or a proxy in front of it"
        )
    return (
        f"the MCP SDK in the artifact is unknown; allow {host} where your SDK takes it:\n"
        f"    {_SETTINGS}\n"
        f"    security = TransportSecuritySettings({_hosts(host)})\n"
        '    mcp 1.x: mcp = FastMCP("name", transport_security=security)\n'
        "    mcp 2.x: app = mcp.streamable_http_app(transport_security=security)\n"
        f'    fastmcp >= 3.4.3: app = mcp.http_app(allowed_hosts=["{host}"])\n'
        f"{_MATCHING} {_ENVIRONMENTS}"
    )


STATELESS_HINT = (
    "a stateful server keeps its sessions in one process's memory; where requests may reach "
    "another instance (Lambda, Workers, Cloud Run with max_instances > 1) or a restarted one, "
    "the session is unknown there. Serve stateless HTTP: python SDK stateless_http=True and "
    "json_response=True (mcp 1.x in FastMCP(...), mcp 2.x in streamable_http_app(...), fastmcp "
    "in http_app(...)); TypeScript SDK new StreamableHTTPServerTransport({ sessionIdGenerator: "
    "undefined })"
)
