"""The background process of a local Lambda deployment.

Run as `python -m targets.aws_lambda.supervisor LOG`.

Reads its request — the function, the secret values, the port, the managed runtime's
interpreter (null for an OS-only runtime) and the task-root cache — as JSON on stdin (never
from a file, an argument or an environment variable); answers `{"url": ...}` or
`{"error": ...}` on stdout once the front door is open; then serves until SIGTERM or SIGINT
and stops the emulator (which ends the execution environment as Lambda does). Imports only
the emulator and the standard library: its start-up is part of every local cold start.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from targets.aws_lambda.emulator import LambdaEmulator, LambdaFunction


def _serve(request: Mapping[str, Any], log: IO[bytes]) -> int:
    """The supervisor's life: start, answer on stdout, serve until SIGTERM/SIGINT."""
    stop_requested = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_requested.set())
    try:
        emulator = LambdaEmulator(
            LambdaFunction.from_dict(request["function"]),
            request["secrets"],
            runtime_python=Path(request["runtime_python"]) if request["runtime_python"] else None,
            task_cache=Path(request["task_cache"]),
            log=log,
            port=int(request["port"]),
        ).start()
    except (OSError, ValueError) as error:
        print(json.dumps({"error": str(error)}), flush=True)
        return 1
    print(json.dumps({"url": emulator.url}), flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the CLI has stopped listening
    while not stop_requested.wait(1):
        pass
    emulator.stop()
    return 0


def main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    sys.stdin.close()
    with open(sys.argv[1], "ab", buffering=0) as log:
        return _serve(request, log)


if __name__ == "__main__":
    sys.exit(main())
