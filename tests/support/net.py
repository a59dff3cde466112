"""Loopback helpers for tests that start servers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str,
    port: int,
    *,
    timeout: float,
    gone: Callable[[], bool] = lambda: False,
    describe: Callable[[], str] = lambda: "",
) -> None:
    """Return once `host:port` accepts connections; AssertionError (with `describe()`, e.g. a
    log tail) when `gone()` says the server died or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            if gone() or time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on {host}:{port}\n{describe()}") from None
            time.sleep(0.05)
