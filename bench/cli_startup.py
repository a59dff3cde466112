#!/usr/bin/env python3
"""Start-up time of `mcp-deploy` against a bare interpreter, measured side by side.

Each round runs every command once, in an order shuffled per round, so drift on a noisy
machine hits all of them alike. Reports the median wall time of each and its ratio to
`python -c pass` (same interpreter, same venv). Writes bench/results/cli_startup.md and .json.

Usage: .venv/bin/python bench/cli_startup.py [--rounds N]
Goal (issue 2): `mcp-deploy --help` within 3x a bare interpreter start.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
SPEC = REPO / "examples" / "toolbox" / "mcp-deploy.toml"
PYTHON = str(VENV_BIN / "python")
CLI = str(VENV_BIN / "mcp-deploy")

COMMANDS: dict[str, list[str]] = {
    "python -c pass (peer)": [PYTHON, "-c", "pass"],
    "python -c 'import click' (floor of any click CLI)": [PYTHON, "-c", "import click"],
    "mcp-deploy --help": [CLI, "--help"],
    "mcp-deploy --version": [CLI, "--version"],
    "mcp-deploy validate": [CLI, "--spec", str(SPEC), "validate"],
    "mcp-deploy config explain": [
        CLI,
        "--spec",
        str(SPEC),
        "config",
        "explain",
        "--env",
        "prod",
        "--target",
        "cloudrun",
    ],
    "mcp-deploy schema": [CLI, "schema"],
}
PEER = "python -c pass (peer)"
GOALS = {"mcp-deploy --help": 3.0}


def time_once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()

    for argv in COMMANDS.values():  # warm the page cache; not counted
        time_once(argv)
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    rng = random.Random(0)
    for _ in range(args.rounds):
        order = list(COMMANDS)
        rng.shuffle(order)
        for name in order:
            samples[name].append(time_once(COMMANDS[name]))

    peer = statistics.median(samples[PEER])
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        ratio = median / peer
        goal = GOALS.get(name)
        rows.append(
            {
                "command": name,
                "median_ms": round(median * 1000, 1),
                "p90_ms": round(statistics.quantiles(values, n=10)[-1] * 1000, 1),
                "ratio_to_peer": round(ratio, 2),
                "goal_ratio": goal,
                "meets_goal": None if goal is None else ratio <= goal,
            }
        )
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rounds": args.rounds,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.system()}, {_cpus()} CPUs",
    }
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "cli_startup.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "# CLI start-up",
        "",
        f"Measured {meta['date']} by `bench/cli_startup.py`: {meta['rounds']} shuffled rounds, "
        f"Python {meta['python']}, {meta['machine']}. Ratios are against `python -c pass` "
        "run side by side in the same rounds.",
        "",
        "| command | median ms | p90 ms | ratio to peer | goal |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        goal = (
            ""
            if row["goal_ratio"] is None
            else (f"≤ {row['goal_ratio']}x — {'met' if row['meets_goal'] else 'NOT met'}")
        )
        lines.append(
            f"| {row['command']} | {row['median_ms']} | {row['p90_ms']} | "
            f"{row['ratio_to_peer']}x | {goal} |"
        )
    (results / "cli_startup.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
