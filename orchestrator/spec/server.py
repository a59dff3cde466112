"""`[server]`: what the server is, in which runtime, and how it starts.

Three runtimes:
- "python": an ASGI app (`entry` = module:attribute) or a stdio program (`command`, transport
  stdio) on the spec's Python (`python`);
- "binary": a Linux executable (`binary`, made by `build`) serving MCP streamable HTTP on
  $PORT behind mcp-deploy's launcher;
- "node": on the spec's Node.js (`node`), a module whose default export is a web-standard
  fetch handler (`entry` = a path such as 'src/server.ts', bundled with esbuild; runs on every
  target), or a program (`command`) that listens on $PORT (transport http) or speaks stdio
  (transport stdio), behind mcp-deploy's launcher (Lambda and Cloud Run).
Which keys each runtime needs or forbids is checked with the whole spec
(`orchestrator.spec.server_checks`), so each problem is reported at its key.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from orchestrator import naming

PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
NODE_VERSIONS = ("20", "22")
PYTHON_ENTRY = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)
NODE_ENTRY = re.compile(r"^[^\s:]+\.(?:js|mjs|cjs|ts|mts|cts|jsx|tsx)$")


def _env_var(value: str) -> str:
    problem = naming.env_var_problem(value)
    if problem:
        raise ValueError(f"'{value}' {problem}")
    return value


EnvVarName = Annotated[str, AfterValidator(_env_var)]


class StrictModel(BaseModel):
    """Base of every spec table: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _server_name(value: str) -> str:
    problem = naming.dns_label_problem(value, max_length=naming.MAX_SERVER_NAME, what="the name")
    if problem:
        raise ValueError(problem)
    return value


def _http_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value) or "?" in value:
        raise ValueError("must be an absolute URL path such as '/mcp' (no spaces, no query)")
    return value


def _relative_path(value: str) -> str:
    parts = value.replace("\\", "/").split("/")
    if value.startswith("/") or ".." in parts or not value.strip():
        raise ValueError("must be a path inside the source directory, e.g. 'target/release/x'")
    return value


def _entry(value: str) -> str:
    if PYTHON_ENTRY.match(value) is None and NODE_ENTRY.match(value) is None:
        raise ValueError(
            "must be module:attribute of an ASGI app (Python, e.g. 'weather.app:app') or the "
            "path of a module exporting a fetch handler (Node, e.g. 'src/server.ts')"
        )
    if NODE_ENTRY.match(value) is not None:
        _relative_path(value)
    return value


ServerName = Annotated[str, AfterValidator(_server_name), Field(examples=["weather"])]
HttpPath = Annotated[str, AfterValidator(_http_path)]
EntryPoint = Annotated[
    str,
    AfterValidator(_entry),
    Field(
        examples=["weather.app:app", "src/server.ts"],
        description="Python: module:attribute of an ASGI app; Node: the path of a module "
        "whose default export is a fetch handler.",
    ),
]
StdioArgument = Annotated[str, Field(min_length=1, max_length=4096)]
BinaryPath = Annotated[
    str, AfterValidator(_relative_path), Field(examples=["target/release/weather"])
]
# The ASGI app of targets/shim/mcp_deploy_stdio.py, which serves a stdio server over HTTP.
STDIO_BRIDGE_ENTRY = "mcp_deploy_stdio:app"


class ServerSection(StrictModel):
    """`[server]`: what the server is and how to start it."""

    name: ServerName = Field(description="DNS-safe name; prefixes every cloud resource.")
    runtime: Literal["python", "binary", "node"] = Field(
        "python",
        description="python: an ASGI app (`entry`) or a stdio program (`command`) on the "
        "spec's Python; binary: a Linux executable (`binary`) serving MCP streamable HTTP on "
        "$PORT, behind mcp-deploy's launcher (Lambda and Cloud Run); node: a fetch-handler "
        "module (`entry`, every target) or a program (`command`: listening on $PORT, or stdio; "
        "Lambda and Cloud Run) on the spec's Node.js.",
    )
    python: Literal["3.11", "3.12", "3.13"] = Field(
        "3.12", description="Python minor version; matches the Lambda runtime and image base."
    )
    node: Literal["20", "22"] = Field(
        "22",
        description="runtime node: the Node.js major; matches the Lambda runtime "
        "(nodejs20.x/nodejs22.x) and the image base (node:<major>-slim).",
    )
    transport: Literal["http", "stdio"] = Field(
        "http",
        description="http: the server serves MCP streamable HTTP (`entry`, or a `command` "
        "listening on $PORT for runtime node); stdio: the server is a program speaking MCP on "
        "stdin/stdout (`command`), which mcp-deploy's bridge serves over streamable HTTP, one "
        "warm child process per instance.",
    )
    entry: EntryPoint | None = Field(
        None,
        description="Python: module:attribute of the ASGI app; Node: the module whose default "
        "export is `{ fetch }` (transport http; python needs entry or command, node one of "
        "them).",
    )
    command: list[StdioArgument] | None = Field(
        None,
        min_length=1,
        description="The server's command line: a stdio server (transport stdio), e.g. "
        '["python", "-m", "mcp_server_time"] (`python` is the runtime\'s own interpreter and '
        "requirements.txt's packages are importable; `node` is the runtime's Node.js and "
        'package.json\'s dependencies are installed), or for runtime node with transport "http" '
        "a program listening on $PORT.",
    )
    binary: BinaryPath | None = Field(
        None,
        description="runtime binary: the Linux executable, relative to the source directory "
        "(required there), e.g. 'target/release/weather'. It must serve MCP streamable HTTP on "
        "$PORT; static binaries run from an empty image, dynamic ones on a glibc base.",
    )
    build: list[StdioArgument] | None = Field(
        None,
        min_length=1,
        description="runtime binary: the command that produces `binary`, run in the source "
        'directory before every build, e.g. ["cargo", "build", "--release", "--locked"] '
        "(unset: `binary` must exist already).",
    )
    source: str = Field(".", description="Source directory, relative to the spec file.")
    path: HttpPath = Field("/mcp", description="URL path of the MCP endpoint.")
    health_path: HttpPath | None = Field(None, description="Optional health-check URL path.")
    include: list[str] = Field(
        default_factory=lambda: ["**/*"], description="Glob patterns of files to package."
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Glob patterns to leave out, on top of the built-in secret-file excludes.",
    )
    ignore_file: str = Field(
        ".mcpdeployignore",
        description="Gitignore-style file (in the source directory) of more paths to leave out.",
    )

    @property
    def app_entry(self) -> str:
        """The ASGI app the Python shims serve: `entry`, or mcp-deploy's stdio bridge."""
        return self.entry if self.entry is not None else STDIO_BRIDGE_ENTRY

    @property
    def runtime_version(self) -> str:
        """The runtime's version as the spec gives it: Python minor, Node major, or ''."""
        return {"python": self.python, "node": self.node}.get(self.runtime, "")

    @property
    def process_based(self) -> bool:
        """True when the server runs as a process behind mcp-deploy's launcher (a binary, or
        a Node `command`), not as a handler inside the runtime's own shim."""
        return self.runtime == "binary" or (self.runtime == "node" and self.command is not None)
