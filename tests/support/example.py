"""Copies of the example server for tests that change its spec or add files to it."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import EXAMPLE_DIR
from tests.support.debian_base import python_base_image

# A second local-kind environment that takes its artifacts from `local` (promotion), with its
# own config and secret sources (QA_TOKEN, QA_API_KEY): append it to an example copy's spec.
QA_ENVIRONMENT = """
[environments.qa]
kind = "local"
promote_from = "local"
config.GREETING = "Hello from qa"
secrets.MCP_AUTH_TOKEN = "env:QA_TOKEN"
secrets.TOOLBOX_API_KEY = "env:QA_API_KEY"
"""
_REGISTRY_LINE = 'registry = "europe-west1-docker.pkg.dev/acme-mcp/mcp"'


def example_copy(
    destination: Path, *, image_base: bool = False, registry: str | None = None
) -> Path:
    """Copy examples/toolbox to `destination` (without its .mcp-deploy); return the spec.

    `image_base`: pin `targets.cloudrun.base` to the tests' Debian Python base in the local
    registry (no public registry is reachable here; `BaseImageError` when it cannot be made).
    `registry`: replace the Cloud Run registry.
    """
    ignore = shutil.ignore_patterns(".mcp-deploy", "__pycache__")
    shutil.copytree(EXAMPLE_DIR, destination, ignore=ignore)
    spec = destination / "mcp-deploy.toml"
    lines = [f'registry = "{registry}"' if registry else _REGISTRY_LINE]
    if image_base:
        lines.append(f'base = "{python_base_image()}"')
    text = spec.read_text()
    if _REGISTRY_LINE not in text:
        raise ValueError(f"{spec} no longer has the line {_REGISTRY_LINE}: update this helper")
    spec.write_text(text.replace(_REGISTRY_LINE, "\n".join(lines)))
    return spec
