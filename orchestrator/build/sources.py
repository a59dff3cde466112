"""Which of the server's files go into an artifact.

Selection: files under `server.source` matching `server.include`, minus `server.exclude`, minus
the patterns of `server.ignore_file` (gitignore syntax), minus the built-in excludes that keep
secrets, VCS data, virtualenvs and caches out of every artifact, minus the spec itself (it holds
per-environment config, which never goes into an artifact) and the lock file next to it (it
records how the artifact was built; inside it, every refresh would change the artifact).
"""

from __future__ import annotations

import os
from pathlib import Path

import pathspec

from orchestrator.errors import input_error
from orchestrator.spec.model import DEFAULT_EXCLUDES, ServerSection

ALWAYS_EXCLUDED = (*DEFAULT_EXCLUDES, "*.pyc", "mcp-deploy.toml", "mcp-deploy.lock")


def select_sources(source_dir: Path, server: ServerSection) -> dict[str, Path]:
    """Map archive-relative POSIX path → file on disk, for every selected file, sorted."""
    ignore_lines: list[str] = []
    ignore_file = source_dir / server.ignore_file
    if ignore_file.is_file():
        ignore_lines = ignore_file.read_text(encoding="utf-8").splitlines()
    include = pathspec.GitIgnoreSpec.from_lines(server.include)
    exclude = pathspec.GitIgnoreSpec.from_lines(
        [*ALWAYS_EXCLUDED, *server.exclude, *ignore_lines, server.ignore_file]
    )
    root = source_dir.resolve()
    selected: dict[str, Path] = {}
    for directory, subdirectories, files in os.walk(root):
        base = Path(directory).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        # Prune excluded directories (".venv/", ".git/", ...) instead of walking into them.
        subdirectories[:] = sorted(
            d for d in subdirectories if not exclude.match_file(prefix + d + "/")
        )
        for name in sorted(files):
            relative = prefix + name
            if not include.match_file(relative) or exclude.match_file(relative):
                continue
            path = Path(directory) / name
            resolved = path.resolve()
            if not resolved.is_relative_to(root) or not resolved.is_file():
                raise input_error(
                    f"server.source: {relative}",
                    f"is a link to {resolved}, not a file inside the source directory",
                    "copy the file in, or leave it out with server.exclude",
                )
            selected[relative] = resolved
    return dict(sorted(selected.items()))
