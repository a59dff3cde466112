"""Helpers the benchmarks share."""

from __future__ import annotations

import os
import platform
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
