"""Scratch space that a killed build cannot leak: folders and files under one directory
(the store's `tmp/`), each named after the process that made it.

Every name starts with `<pid>-<start time>-<machine>-`: the pid and the start time (clock
ticks since boot, see `orchestrator.processes`) identify the process even after its pid is
reused, and the machine tag (hostname and pid namespace) keeps a process on another machine
sharing the directory, or in another container, from being judged by pids that are not its
own. `remove_leftovers` deletes what dead processes of this machine left behind and nothing
else: a name it cannot attribute (another naming, another machine) is left alone.

Keeping scratch next to the store also puts it on the store's filesystem, so a finished file
moves into the store with an atomic rename instead of a copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from orchestrator.processes import alive, start_time

_OWNED = re.compile(r"^(\d+)-(\d+)-([0-9a-f]{8})-")


def machine_tag() -> str:
    """8 hex digits naming this machine and pid namespace (pids mean something only there)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    seed = f"{socket.gethostname()}\0{namespace}".encode()
    return hashlib.sha256(seed).hexdigest()[:8]


def owner_prefix() -> str:
    """`<pid>-<start time>-<machine>-`: the start of every name this process makes."""
    pid = os.getpid()
    return f"{pid}-{start_time(pid) or 0}-{machine_tag()}-"


def make_dir(root: Path, purpose: str) -> Path:
    """A new, empty folder under `root` owned by this process (`root` is created)."""
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{owner_prefix()}{purpose}-", dir=root))


def make_file(root: Path, purpose: str) -> tuple[int, Path]:
    """A new, empty file under `root` owned by this process: (open descriptor, path)."""
    root.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix=f"{owner_prefix()}{purpose}-", dir=root)
    return descriptor, Path(name)


@contextlib.contextmanager
def scratch_dir(root: Path, purpose: str) -> Iterator[Path]:
    """A folder under `root` for the block; removed afterwards (left for `remove_leftovers`
    only when the process dies inside the block)."""
    path = make_dir(root, purpose)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_leftovers(root: Path) -> list[Path]:
    """Delete the entries of `root` made by processes of this machine that no longer run;
    returns what was removed. Entries of live processes, of other machines or pid
    namespaces, and entries not named by `owner_prefix` are kept."""
    removed: list[Path] = []
    if start_time(os.getpid()) is None:  # no /proc: nobody can be told alive, keep everything
        return removed
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    machine = machine_tag()
    for entry in entries:
        found = _OWNED.match(entry.name)
        if found is None or found.group(3) != machine:
            continue
        if alive(int(found.group(1)), found.group(2)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        if not entry.exists():
            removed.append(entry)
    return removed
