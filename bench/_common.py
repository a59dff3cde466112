"""Helpers the benchmarks share."""

from __future__ import annotations

import fcntl
import os
import platform
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path


def machine() -> str:
    """`arch, OS, N CPUs (model)` of this machine, for the results' header."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = os.cpu_count() or 0
    return f"{platform.machine()}, {platform.system()}, {cpus} CPUs" + (
        f" ({model})" if model else ""
    )


@contextmanager
def exclusive(names: tuple[str, ...], progress: Callable[[str], None]) -> Iterator[None]:
    """Hold the lock files `names` (under the mcp-deploy cache) for the block, waiting for
    whoever holds them: two benches at once would skew each other's timings."""
    from orchestrator.paths import cache_root

    cache = cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        for name in names:
            handle = stack.enter_context((cache / name).open("w"))
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                progress(f"another bench holds {name}: waiting for it to finish")
                fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def remote_connects(trace: Path) -> tuple[set[str], set[str]]:
    """(loopback, other) addresses connect()ed to in an strace log (inet and inet6)."""
    found: set[str] = set()
    text = trace.read_text(errors="replace") if trace.exists() else ""
    for match in re.finditer(
        r'sin6?_port=htons\((\d+)\).*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")',
        text,
    ):
        found.add(f"{match.group(2) or match.group(3)}:{match.group(1)}")
    loopback = {a for a in found if a.startswith(("127.", "::1:", "::ffff:127."))}
    return loopback, found - loopback
