"""The build's own checks of a spec, for `validate`: can the files that would go into an
artifact be selected (no package linked from outside the source tree, readable ignore file,
valid patterns, no secret file packaged), and what is valid but worth a word.

Here rather than in `orchestrator.spec.checks` because they need the build's file selection:
the spec knows nothing of builds.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.build.sources import select_sources
from orchestrator.errors import InputError, Issue
from orchestrator.secret_values import secret_files
from orchestrator.spec.loader import LoadedSpec


def source_issues(loaded: LoadedSpec) -> list[Issue]:
    """Why the server's files cannot be selected for an artifact (empty: they can)."""
    server = loaded.spec.server
    if server.runtime == "binary" and "include" not in server.model_fields_set:
        return []  # a binary server ships its executable, not its source tree
    try:
        source = Path(os.path.realpath(loaded.root / server.source))
        select_sources(
            source, server, keep_out=secret_files(loaded.spec, loaded.root), issue=loaded.issue
        )
    except InputError as error:
        return list(error.issues)
    return []


def source_warnings(loaded: LoadedSpec) -> list[Issue]:
    """What is valid but worth a word (`validate` prints them; exit code 0): a `file:` secret
    source inside the source directory (it is kept out of every artifact, but belongs
    elsewhere). Never raises."""
    try:
        source = Path(os.path.realpath(loaded.root / loaded.spec.server.source))
    except ValueError:  # a NUL byte: check_spec has refused the spec already
        return []
    warnings: list[Issue] = []
    for path, loc in secret_files(loaded.spec, loaded.root).items():
        if path.is_relative_to(source):
            warnings.append(
                loaded.issue(
                    loc,
                    f"secret file {path} is inside the source directory ({source}); "
                    "it is kept out of every artifact",
                    "move it out of the source tree, or add it to .gitignore so it is never "
                    "committed",
                )
            )
    return warnings
