"""The JS module Worker bundle's metadata, and the workerd config that serves it as Cloudflare
would.

## The bundle's metadata: `mcp_deploy_worker.json` at the root of the workers-bundle zip

    {
      "main_module": "worker.mjs",
      "modules": [
        {"name": "worker.mjs", "type": "esm"},
        {"name": "lib/words.txt", "type": "text"}
      ],
      "compatibility_date": "2025-09-01",
      "compatibility_flags": ["nodejs_compat"]
    }

- `modules`: every module of the Worker, each the zip member of the same path (other members
  are not modules and are left out). `type` is one of `esm`, `commonjs`, `text`, `data`,
  `json`, `wasm` (Cloudflare's `application/javascript+module`, `application/javascript`,
  `text/plain`, `application/octet-stream`, `application/json`, `application/wasm`). A name is
  a relative POSIX path whose segments are letters, digits and `._@+-`, not starting with `.`;
  names are unique.
- `main_module`: one of the modules, of type `esm`, exporting `default { fetch(request, env,
  ctx) }`.
- `compatibility_date` (`YYYY-MM-DD`) and `compatibility_flags` (snake_case names; optional,
  default `[]`): as given to Cloudflare.
- optional: `format` (1, the only one so far) and `runtime` (`node`, the server's runtime: the
  bundle's code is JavaScript, whatever wrote it). No other key is accepted.

A Python Worker bundle (`targets.workers.package`) has no such file.

## The config (`config_text`)

Cap'n Proto text, one constant of type `Workerd.Config` named after the deployment
(`const_name`), with
- the Worker as service `<script>` (its module list main module first, as workerd takes the
  first module as the main one, each `embed "/<name>"` from the unpacked bundle given as
  workerd's import path; the bundle's compatibility date and flags; one `text` binding per
  config value, as Cloudflare's `plain_text`, and one per secret, as Cloudflare's
  `secret_text`, which the Worker sees exactly alike);
- Cloudflare's edge in front of it, a small Worker (`EDGE_WORKER`, service `mcp-deploy-edge`)
  on the one socket, `http` on 127.0.0.1: it hands each request to the Worker through a service
  binding with the URL `https://<host><path>` and `Host: <host>` the Worker would see on
  workers.dev, and the headers Cloudflare adds (`CF-Connecting-IP`, `X-Real-IP`,
  `X-Forwarded-For`, `X-Forwarded-Proto: https`, `CF-Visitor`, `CF-Ray`, `CDN-Loop`; the client
  is always 127.0.0.1, the ray's colo `LCL`) and a `request.cf` object without geolocation;
  a body declared larger than 100 MB (the Free and Pro plans' limit) is answered 413;
- the Worker's outbound network (its `fetch()` to other hosts, e.g. an OAuth issuer's keys),
  the network service `OUTBOUND_SERVICE` as the Worker's `globalOutbound`: the public internet
  as on Cloudflare, plus this machine's loopback addresses (`OUTBOUND_ALLOW`), so that a
  Worker can reach a loopback identity provider in the emulation. On Cloudflare a Worker's
  fetch goes to the public internet only; it can never reach the deployer's loopback.

Strings are escaped for Cap'n Proto (`capnp_string`): `"`, `\\`, and every byte outside
printable ASCII as `\\xNN` of its UTF-8 encoding (Cap'n Proto knows no `\\u`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METADATA_FILE = "mcp_deploy_worker.json"
# Module type -> the field of workerd's `Worker.Module` that holds it.
MODULE_FIELDS = {
    "esm": "esModule",
    "commonjs": "commonJsModule",
    "text": "text",
    "data": "data",
    "json": "json",
    "wasm": "wasm",
}
EDGE_SERVICE = "mcp-deploy-edge"
OUTBOUND_SERVICE = "mcp-deploy-outbound"
# workerd's default outbound allows "public" only; the emulation adds loopback (IPv4 and IPv6).
OUTBOUND_ALLOW = ("public", "127.0.0.0/8", "::1/128")
EDGE_COMPATIBILITY_DATE = "2025-09-01"
MAX_REQUEST_BODY = 100 * 1024 * 1024  # Cloudflare's request body limit on Free and Pro
_SEGMENT = re.compile(r"^[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*$")
_FLAG = re.compile(r"^[a-z0-9_]+$")
_KEYS = {"format", "runtime", "main_module", "modules", "compatibility_date", "compatibility_flags"}
RUNTIMES = ("node",)

EDGE_WORKER = """\
// mcp-deploy: Cloudflare's edge in front of the Worker, on this machine.
const CLIENT = "127.0.0.1";
const REPLACED = ["cf-connecting-ip", "cf-connecting-ipv6", "cf-ray", "cf-visitor",
  "cf-ipcountry", "cf-worker", "x-real-ip", "x-forwarded-proto", "cdn-loop"];

function ray() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("") + "-LCL";
}

export default {
  async fetch(request, env) {
    const length = request.headers.get("content-length");
    if (length !== null && Number(length) > MAX_BODY) {
      return new Response("413 Request Entity Too Large\\n", { status: 413 });
    }
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    for (const name of REPLACED) headers.delete(name);
    const forwardedFor = headers.get("x-forwarded-for");
    headers.set("host", env.HOST);
    headers.set("cf-connecting-ip", CLIENT);
    headers.set("x-real-ip", CLIENT);
    headers.set("x-forwarded-for", forwardedFor ? `${forwardedFor}, ${CLIENT}` : CLIENT);
    headers.set("x-forwarded-proto", "https");
    headers.set("cf-visitor", '{"scheme":"https"}');
    headers.set("cf-ray", ray());
    headers.set("cdn-loop", "cloudflare");
    const cf = {
      httpProtocol: "HTTP/1.1",
      tlsVersion: "TLSv1.3",
      tlsCipher: "AEAD-AES128-GCM-SHA256",
      clientTcpRtt: 0,
      edgeRequestKeepAliveStatus: 1,
      requestPriority: "",
      clientAcceptEncoding: request.headers.get("accept-encoding") ?? "",
      colo: "LCL",
    };
    return env.WORKER.fetch(new Request(`https://${env.HOST}${url.pathname}${url.search}`, {
      method: request.method, headers, body: request.body, redirect: "manual", cf,
    }));
  },
};
""".replace("MAX_BODY", str(MAX_REQUEST_BODY))


@dataclass(frozen=True)
class WorkerModule:
    """One module: its name (= its path in the bundle) and type (a key of MODULE_FIELDS)."""

    name: str
    type: str


@dataclass(frozen=True)
class WorkerBundle:
    """The parsed `mcp_deploy_worker.json`; `modules` main module first."""

    main_module: str
    modules: tuple[WorkerModule, ...]
    compatibility_date: dt.date
    compatibility_flags: tuple[str, ...]

    @classmethod
    def from_json(cls, data: bytes) -> WorkerBundle:
        """Parse and check the metadata; `ValueError` saying what is wrong otherwise."""
        try:
            raw: Any = json.loads(data)
        except ValueError as error:
            raise ValueError(f"not JSON: {error}") from None
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}")
        if raw.get("format", 1) != 1:
            raise ValueError(f"format {raw['format']!r} is not 1 (a newer mcp-deploy wrote it)")
        if raw.get("runtime", "node") not in RUNTIMES:
            raise ValueError(f"runtime {raw['runtime']!r} is not one of {', '.join(RUNTIMES)}")
        modules = _modules(raw.get("modules"))
        main = raw.get("main_module")
        types = {module.name: module.type for module in modules}
        if not isinstance(main, str) or main not in types:
            raise ValueError("main_module must name one of the modules")
        if types[main] != "esm":
            raise ValueError(f"main_module {main!r} must be of type 'esm'")
        flags = raw.get("compatibility_flags", [])
        if not isinstance(flags, list) or not all(
            isinstance(flag, str) and _FLAG.match(flag) for flag in flags
        ):
            raise ValueError("compatibility_flags must be a list of flag names (snake_case)")
        ordered = sorted(modules, key=lambda module: module.name != main)  # stable: main first
        return cls(main, tuple(ordered), _date(raw.get("compatibility_date")), tuple(flags))


def _modules(value: object) -> list[WorkerModule]:
    if not isinstance(value, list) or not value:
        raise ValueError("modules must be a non-empty list")
    modules: list[WorkerModule] = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"name", "type"}:
            raise ValueError('each module must be {"name": ..., "type": ...}')
        name, kind = item["name"], item["type"]
        if not isinstance(name, str) or not module_name_ok(name):
            raise ValueError(f"module name {name!r} is not a plain relative path")
        if kind not in MODULE_FIELDS:
            raise ValueError(f"module {name!r}: type must be one of {', '.join(MODULE_FIELDS)}")
        if any(module.name == name for module in modules):
            raise ValueError(f"module {name!r} is listed twice")
        modules.append(WorkerModule(name, kind))
    return modules


def _date(value: object) -> dt.date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("compatibility_date must be a date, YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"compatibility_date {value!r} is not a date") from None


def module_name_ok(name: str) -> bool:
    """True for a relative POSIX path of plain segments (see the module docstring)."""
    return all(_SEGMENT.match(segment) for segment in name.split("/"))


def capnp_string(value: str) -> str:
    """`value` as a Cap'n Proto string literal (quotes included); `ValueError` when it is not
    valid Unicode."""
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (undecodable bytes): never echo the value
        raise ValueError("a string is not valid Unicode (it holds undecodable bytes)") from None
    out = []
    for byte in encoded:
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def const_name(state_dir: Path) -> str:
    """The config constant's name for the deployment whose files live in `state_dir`: it is
    on workerd's command line, which is how `find` recognises the deployment's process."""
    return "mcpDeploy" + hashlib.sha256(str(state_dir).encode()).hexdigest()[:24]


def config_text(
    const: str,
    service: str,
    bundle: WorkerBundle,
    bindings: Sequence[tuple[str, str]],
    host: str,
    port: int,
) -> str:
    """The workerd config (see the module docstring): `service` is the Worker's service name
    (its script name), `bindings` its text bindings (name, value) in order, `host` what it is
    served as, `port` the socket's port on 127.0.0.1 (0: any free one)."""
    if service in (EDGE_SERVICE, OUTBOUND_SERVICE):
        raise ValueError(f"{service!r} is the name of one of the edge's services")
    names = [name for name, _ in bindings]
    if len(set(names)) != len(names):
        raise ValueError("binding names must be unique")
    modules = ",\n    ".join(
        f"(name = {capnp_string(module.name)}, "
        f"{MODULE_FIELDS[module.type]} = embed {capnp_string('/' + module.name)})"
        for module in bundle.modules
    )
    flags = ", ".join(capnp_string(flag) for flag in bundle.compatibility_flags)
    outbound = ", ".join(capnp_string(block) for block in OUTBOUND_ALLOW)
    text_bindings = ",\n    ".join(
        f"(name = {capnp_string(name)}, text = {capnp_string(value)})" for name, value in bindings
    )
    return f"""\
# Generated by mcp-deploy: a Worker behind Cloudflare's edge, on 127.0.0.1.
using Workerd = import "/workerd/workerd.capnp";

const {const} :Workerd.Config = (
  services = [
    (name = {capnp_string(service)}, worker = .{const}Worker),
    (name = {capnp_string(EDGE_SERVICE)}, worker = .{const}Edge),
    (name = {capnp_string(OUTBOUND_SERVICE)}, network = (allow = [{outbound}])),
  ],
  sockets = [
    (name = "http", address = {capnp_string(f"127.0.0.1:{port}")},
     service = {capnp_string(EDGE_SERVICE)}),
  ],
);

const {const}Worker :Workerd.Worker = (
  modules = [
    {modules}
  ],
  compatibilityDate = {capnp_string(bundle.compatibility_date.isoformat())},
  compatibilityFlags = [{flags}],
  bindings = [
    {text_bindings}
  ],
  globalOutbound = {capnp_string(OUTBOUND_SERVICE)},
);

const {const}Edge :Workerd.Worker = (
  modules = [(name = "edge.mjs", esModule = {capnp_string(EDGE_WORKER)})],
  compatibilityDate = {capnp_string(EDGE_COMPATIBILITY_DATE)},
  bindings = [
    (name = "HOST", text = {capnp_string(host)}),
    (name = "WORKER", service = {capnp_string(service)}),
  ],
);
"""


def text_bindings(
    variables: Mapping[str, str], secrets: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The Worker's text bindings: config values (Cloudflare `plain_text`), then secrets
    (`secret_text`), each sorted by name. `ValueError` when a name is both."""
    both = sorted(set(variables) & set(secrets))
    if both:
        raise ValueError(f"{both[0]} is both a config value and a secret")
    return sorted(variables.items()) + sorted(secrets.items())
