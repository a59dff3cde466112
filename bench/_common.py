"""Helpers the benchmarks share."""

from __future__ import annotations

import fcntl
import os
import platform
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any


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


@contextmanager
def workspace(name: str, progress: Callable[[str], None]) -> Iterator[tuple[Path, ExitStack]]:
    """A temporary directory and an ExitStack for what the bench starts; both undone on exit
    (the stack first, then the directory)."""
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix=f"mcp-deploy-bench-{name}-"))
    try:
        with ExitStack() as cleanup:
            yield work, cleanup
            progress("cleaning up: servers, loaded images, temp dirs")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_start_bench(
    name: str,
    doc: str | None,
    measure: Callable[[Any, Path, ExitStack], dict[str, Any]],
    results: Callable[[Any, dict[str, Any]], dict[str, Any]],
    markdown: Callable[[dict[str, Any]], str],
    progress: Callable[[str], None],
) -> int:
    """The driver shared by the benches that start servers and time cold starts and warm
    calls (`--rounds`, `--calls`): one bench at a time (bench/local.py's and bench/build.py's
    locks), `measure` in a workspace, then `results` written to bench/results/<name>.json and
    its `markdown` to <name>.md (and printed)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument(
        "--calls", type=int, default=200, help="timed warm calls per start (default 200)"
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.calls < 10:
        parser.error("--rounds must be at least 1 and --calls at least 10")
    with exclusive(("bench-local.lock", "bench-build.lock"), progress):
        with workspace(name, progress) as (work, cleanup):
            data = measure(args, work, cleanup)
        result = results(args, data)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    text = markdown(result)
    (out / f"{name}.md").write_text(text)
    print(text)
    return 0
