"""`mcp-deploy init`: a spec and a minimal working MCP server, never overwriting anything."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from orchestrator import naming
from orchestrator.errors import InputError, Issue, input_error
from orchestrator.spec.server import PYTHON_VERSIONS
from targets.base import host_architecture

DEFAULT_PYTHON = "3.12"


@dataclass(frozen=True)
class Scaffold:
    """What `init` wrote."""

    directory: Path
    name: str
    files: tuple[Path, ...]


def host_python() -> str:
    """This machine's Python minor ("3.11") when a spec may name it, else the model's
    default: local runs use an interpreter of the spec's minor, and the default Cloud Run base
    is that minor's image, so the two agree with what this machine runs."""
    minor = "{}.{}".format(*sys.version_info[:2])
    return minor if minor in PYTHON_VERSIONS else DEFAULT_PYTHON


def _templates(package: str) -> dict[str, str]:
    """Relative output path → template name."""
    return {
        "mcp-deploy.toml": "mcp-deploy.toml.tmpl",
        f"{package}/__init__.py": "package_init.py.tmpl",
        f"{package}/app.py": "app.py.tmpl",
        "requirements.txt": "requirements.txt.tmpl",
        ".mcpdeployignore": "mcpdeployignore.tmpl",
    }


def _stdio_templates() -> dict[str, str]:
    """Relative output path → template name, for an existing stdio server."""
    return {
        "mcp-deploy.toml": "mcp-deploy-stdio.toml.tmpl",
        ".mcpdeployignore": "mcpdeployignore.tmpl",
    }


def _binary_templates() -> dict[str, str]:
    """Relative output path → template name, for an existing binary server."""
    return {"mcp-deploy.toml": "mcp-deploy-binary.toml.tmpl"}


@dataclass(frozen=True)
class BinaryServer:
    """An existing server built as an executable: its path (relative to the directory) and
    the command that builds it (None: built by other means)."""

    binary: str
    build: list[str] | None


def guess_binary(directory: Path) -> BinaryServer | None:
    """What a Cargo or Go project in `directory` builds: `target/release/<bin or package>`
    with `cargo build --release --locked`, or a static `bin/<last module path element>` with
    `go build`; None when neither (or unreadable)."""
    import tomllib

    cargo, go_mod = directory / "Cargo.toml", directory / "go.mod"
    if cargo.is_file():
        try:
            manifest = tomllib.loads(cargo.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        bins = manifest.get("bin") or []
        name = bins[0].get("name") if bins else manifest.get("package", {}).get("name")
        if not isinstance(name, str):
            return None
        return BinaryServer(f"target/release/{name}", ["cargo", "build", "--release", "--locked"])
    if go_mod.is_file():
        try:
            lines = go_mod.read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        module = next((line.split()[1] for line in lines if line.startswith("module ")), None)
        if module is None:
            return None
        name = module.rstrip("/").rsplit("/", 1)[-1]
        build = ["env", "CGO_ENABLED=0", "go", "build", "-trimpath", "-ldflags", "-s -w"]
        return BinaryServer(f"bin/{name}", [*build, "-o", f"bin/{name}", "."])
    return None


def scaffold(
    directory: Path,
    name: str | None = None,
    command: list[str] | None = None,
    requirements: list[str] | None = None,
    binary: BinaryServer | None = None,
) -> Scaffold:
    """Write a spec and server into `directory` (created if missing); with `command`, a spec
    for the existing stdio server that command starts (and `requirements`, the packages that
    provide it, in requirements.txt); with `binary`, a spec for the existing server built as
    that executable.

    Raises `InputError` without writing anything when the name is not DNS-safe or when any
    file it would write already exists.
    """
    server_name = name if name is not None else naming.suggest_dns_label(directory.resolve().name)
    problem = naming.dns_label_problem(
        server_name, max_length=naming.MAX_SERVER_NAME, what="the server name"
    )
    if problem:
        raise input_error(
            "--name" if name is not None else "DIR",
            f"cannot use '{server_name}' as the server name: {problem}",
            "pass --name NAME with a DNS-safe name",
        )
    package = server_name.replace("-", "_")
    if binary is not None:
        templates = _binary_templates()
    else:
        templates = _templates(package) if command is None else _stdio_templates()
    plan: dict[Path, str] = {directory / out: template for out, template in templates.items()}
    if requirements:
        plan[directory / "requirements.txt"] = ""
    existing = [path for path in plan if path.exists()]
    if existing:
        raise InputError(
            [
                Issue(where=str(path), message="already exists; init never overwrites")
                for path in existing
            ]
        )
    values = {
        "name": server_name,
        "package": package,
        "arch": host_architecture(),
        "python": host_python(),
        "command": json.dumps(command or []),  # a JSON array of strings is a TOML array
        "binary": binary.binary if binary is not None else "",
        "build_line": _build_line(binary),
        "platform": "linux/arm64" if host_architecture() == "arm64" else "linux/amd64",
    }
    template_dir = resources.files("orchestrator") / "templates"
    for path, template in plan.items():
        if not template:  # requirements.txt of a stdio server: the packages named
            text = "".join(f"{line}\n" for line in requirements or [])
        else:
            source = (template_dir / template).read_text(encoding="utf-8")
            text = Template(source).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    return Scaffold(directory=directory, name=server_name, files=tuple(plan))


def _build_line(binary: BinaryServer | None) -> str:
    """The spec's `build` line (commented out when the binary is built by other means)."""
    if binary is None or binary.build is None:
        return "# build = [...]  # the command that produces `binary`, run before every build"
    return (
        "# Run before every build, in this directory; it must produce `binary`.\n"
        f"build = {json.dumps(binary.build)}"
    )
