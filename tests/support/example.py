"""Copies of the example server for tests that change its spec or add files to it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_DIR
from tests.support.debian_base import BaseImageError, python_base_image

_REGISTRY_LINE = 'registry = "europe-west1-docker.pkg.dev/acme-mcp/mcp"'


def example_copy(
    destination: Path, *, image_base: bool = False, registry: str | None = None
) -> Path:
    """Copy examples/toolbox to `destination` (without its .mcp-deploy); return the spec.

    `image_base`: pin `targets.cloudrun.base` to the tests' Debian Python base in the local
    registry (no public registry is reachable here). `registry`: replace the Cloud Run
    registry.
    """
    shutil.copytree(EXAMPLE_DIR, destination, ignore=shutil.ignore_patterns(".mcp-deploy"))
    spec = destination / "mcp-deploy.toml"
    lines = [f'registry = "{registry}"' if registry else _REGISTRY_LINE]
    if image_base:
        try:
            lines.append(f'base = "{python_base_image()}"')
        except BaseImageError as error:
            pytest.fail(str(error), pytrace=False)
    spec.write_text(spec.read_text().replace(_REGISTRY_LINE, "\n".join(lines)))
    return spec
