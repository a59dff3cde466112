"""Cached working copies of example projects for the tests: an inter-process lock per copy,
the project's source files (build outputs and installed dependencies left out), and keeping a
copy's sources equal to the project's without touching what was built there."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(root: Path, name: str) -> Iterator[None]:
    """Hold `root/<name>.lock` (an exclusive flock) for the block."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sources(root: Path, not_sources: Collection[str]) -> set[Path]:
    """Relative paths of the files under `root` whose first part is not in `not_sources`."""
    found: set[Path] = set()
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if relative.parts[0] in not_sources or not path.is_file():
            continue
        found.add(relative)
    return found


def mirror(
    source: Path, work: Path, not_sources: Collection[str], keep: Collection[Path] = ()
) -> None:
    """Make `work`'s sources equal `source`'s: copy new or changed files (their mtime becomes
    now, so a build tool sees them as edited), delete files that went away (but `keep`); leave
    what `not_sources` names alone."""
    wanted = sources(source, not_sources)
    for relative in sorted(wanted):
        target = work / relative
        data = (source / relative).read_bytes()
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        shutil.copymode(source / relative, target)
    if work.is_dir():
        for stale in sources(work, not_sources) - wanted - set(keep):
            (work / stale).unlink()
