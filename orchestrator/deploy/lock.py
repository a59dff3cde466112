"""One lock per (environment, target): two deploys racing on one environment never interleave.

The lock is an `flock` on `<project>/.mcp-deploy/locks/<env>.<target>.lock`, so it is released
by the kernel when its holder dies, however it dies. The file says who holds it (pid, command,
since), which is what a waiting deploy shows.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from orchestrator.errors import OperationError

DEFAULT_WAIT = 600.0


@contextlib.contextmanager
def deployment_lock(
    path: Path,
    what: str,
    progress: Callable[[str], None],
    wait: float = DEFAULT_WAIT,
) -> Iterator[None]:
    """Hold the lock at `path` for the block. Waits up to `wait` seconds for another holder
    (saying who it is once), then raises `OperationError` naming it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                if time.monotonic() >= deadline:
                    raise OperationError(
                        f"another mcp-deploy is changing {what} ({holder})",
                        hint="wait for it to finish and run again",
                    ) from None
                if not told:
                    progress(f"waiting for another mcp-deploy changing {what} ({holder})")
                    told = True
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "command": " ".join(["mcp-deploy", *sys.argv[1:2]]),
                    "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            )
        )
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock


def _holder(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {data['pid']}, {data['command']}, since {data['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
