"""Background processes that outlive the CLI: find them again, tell if they live, end them.

A pid alone can be reused by an unrelated process after the original ends, so a process is
identified by its pid *and* its start time (field 22 of /proc/<pid>/stat, in clock ticks since
boot). Background servers run in their own session, so their process group (pgid = pid) holds
everything they started.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path


def _stat(path: Path) -> list[str] | None:
    """Fields 3… of a /proc/<pid>/stat file (state, ppid, pgrp, …), None when it is gone.
    The command name (field 2) is in parentheses and may contain spaces."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None when there is no such pid."""
    fields = _stat(Path(f"/proc/{pid}/stat"))
    return fields[19] if fields else None


def alive(pid: int, started: str) -> bool:
    """True while the process `pid` that started at `started` runs (and is not a zombie)."""
    fields = _stat(Path(f"/proc/{pid}/stat"))
    return fields is not None and fields[19] == started and fields[0] != "Z"


def live_members(group: int) -> list[int]:
    """Pids of the processes (not zombies) in process group `group`."""
    members = []
    for path in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(path)
        if fields and fields[2] == str(group) and fields[0] != "Z":
            members.append(int(path.parent.name))
    return members


def stop_group(pid: int, started: str, grace: float) -> bool:
    """SIGTERM the process group led by `pid`, SIGKILL what is left after `grace` seconds (or
    once the leader is gone); True when no process of the group lives afterwards. Does nothing
    when `pid` is no longer that process."""
    if not alive(pid, started):
        return True
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not alive(pid, started):
            break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # whatever is left in the group
    for _ in range(100):
        _reap(pid)
        if not live_members(pid):
            return True
        time.sleep(0.02)
    return False


def _reap(pid: int) -> None:
    """Collect `pid` when it is our own child (otherwise its parent or init does)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def find_by_argv(*wanted: str) -> list[int]:
    """Pids of the live processes whose command line holds every one of `wanted` as a whole
    argument (how a background server started by mcp-deploy is found without any state)."""
    found = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = path.read_bytes().split(b"\0")
        except OSError:
            continue
        if all(item.encode() in argv for item in wanted):
            pid = int(path.parent.name)
            started = start_time(pid)
            if started is not None and alive(pid, started):
                found.append(pid)
    return sorted(found)


def listening_ports(pid: int) -> list[int]:
    """The TCP ports process `pid` listens on (IPv4 and IPv6), from its sockets' inodes."""
    inodes = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return []
    for fd in descriptors:
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a text file ('' when it does not exist)."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except OSError:
        return ""


_ERROR_LINE = re.compile(r"^(\[ERROR\] .+|[A-Za-z_.]*(Error|Exception): .+)$")


def follow(path: Path, running: Callable[[], bool], interval: float = 0.2) -> Iterator[str]:
    """The text appended to the log at `path` from now on, as it is written; ends once nothing
    new is there and `running()` says the writer is gone."""
    with path.open("r", encoding="utf-8", errors="replace") as log:
        log.seek(0, os.SEEK_END)
        while True:
            text = log.read()
            if text:
                yield text
            elif not running():
                return
            else:
                time.sleep(interval)


def last_error(log: str) -> str | None:
    """The last line of `log` that reports an error (`[ERROR] ...` from the Lambda runtime
    client, `SomethingError: ...` closing a Python traceback), if any."""
    found = [line.strip() for line in log.splitlines() if _ERROR_LINE.match(line.strip())]
    return found[-1] if found else None


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block and deliver them right after it, so a step
    that must finish whole (start a server *and* write down that it runs) does. Handlers, not a
    signal mask: children started in the block do not inherit anything. Only the main thread
    can do this; elsewhere the block runs unprotected."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, _frame: object) -> None:
        caught.append(signum)

    held = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, hold) for signum in held}
    try:
        yield
    finally:
        for held_signal, handler in previous.items():
            signal.signal(held_signal, handler)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)
