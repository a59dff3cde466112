"""`mcp-deploy verify` wall time on one deployment, against the smoke test of the same
deployment measured side by side, rounds interleaved (issue: verify as a deploy gate).

The deployment: examples/toolbox on Lambda-local (bearer auth; 6 scenarios apply, 26 do not).
Each round runs, as whole `mcp-deploy` processes, `verify --target lambda --json` and `smoke
--target lambda --json`. The verify report's own figures (the time inside `verify()`, each
scenario's) and the bare cost of one suite process (`node <suite> --version`: Node's start
and the suite's module graph, which every scenario pays) say where the time goes. The suite
and Node.js are installed before the first round (the one-time install is timed apart).

Usage: .venv/bin/python bench/verify.py [--rounds N]   (writes bench/results/verify.{json,md})
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import _common  # noqa: E402
from tests.support.example import example_copy  # noqa: E402

MCP_DEPLOY = str(REPO / ".venv" / "bin" / "mcp-deploy")
RESULTS = REPO / "bench" / "results"
SECRETS = {"TOOLBOX_LOCAL_TOKEN": "bench-verify-token", "TOOLBOX_LOCAL_API_KEY": "bench-key"}


def run(spec: Path, *args: str) -> tuple[float, dict[str, Any]]:
    env = {**os.environ, **SECRETS, "MCP_DEPLOY_SPEC": str(spec)}
    started = time.perf_counter()
    done = subprocess.run([MCP_DEPLOY, *args], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mcp-deploy {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return elapsed, json.loads(done.stdout) if "--json" in args else {}


def suite_start() -> float:
    """One bare suite process: `node <suite>/dist/index.js --version`."""
    from orchestrator.verify.toolchain import toolchain

    tools = toolchain(lambda _step: None)
    started = time.perf_counter()
    subprocess.run(tools.command("--version"), capture_output=True, check=True)
    return time.perf_counter() - started


def install_seconds() -> float | None:
    """The one-time install of the suite and Node.js into an empty cache (None: no npm)."""
    from orchestrator.verify.toolchain import toolchain

    if shutil.which("npm") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="mcp-deploy-bench-verify-cache-") as cache:
        previous = os.environ.get("MCP_DEPLOY_CACHE_DIR")
        os.environ["MCP_DEPLOY_CACHE_DIR"] = cache
        try:
            started = time.perf_counter()
            toolchain(lambda _step: None)
            return time.perf_counter() - started
        finally:
            if previous is None:
                os.environ.pop("MCP_DEPLOY_CACHE_DIR", None)
            else:
                os.environ["MCP_DEPLOY_CACHE_DIR"] = previous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    with _common.exclusive(("bench-local.lock",), print), tempfile.TemporaryDirectory() as work:
        from orchestrator.verify.toolchain import toolchain

        print("installing the suite once into a fresh cache (timed)")
        installed = install_seconds()
        toolchain(print)  # the real cache
        spec = example_copy(Path(work) / "toolbox", image_base=True)
        print("deploying the example to local on lambda")
        run(spec, "--target", "lambda", "--json")
        verify_times: list[float] = []
        smoke_times: list[float] = []
        inner: list[float] = []
        scenario_times: list[float] = []
        starts: list[float] = []
        scenarios = 0
        try:
            for number in range(rounds):
                elapsed, report = run(spec, "verify", "--target", "lambda", "--json")
                assert report["ok"], report
                verify_times.append(elapsed)
                inner.append(report["seconds"])
                scenario_times.extend(s["seconds"] for s in report["scenarios"])
                scenarios = len(report["scenarios"])
                smoke_times.append(run(spec, "smoke", "--target", "lambda", "--json")[0])
                starts.append(suite_start())
                print(f"round {number + 1}: verify {elapsed:.2f} s, smoke {smoke_times[-1]:.2f} s")
        finally:
            run(spec, "destroy", "--target", "lambda", "--env", "local", "--yes")
    verify_median = statistics.median(verify_times)
    smoke_median = statistics.median(smoke_times)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _common.machine(),
        "rounds": rounds,
        "scenarios_run": scenarios,
        "verify_seconds": verify_times,
        "verify_median": verify_median,
        "verify_inner_median": statistics.median(inner),
        "scenario_median": statistics.median(scenario_times),
        "suite_process_median": statistics.median(starts),
        "smoke_seconds": smoke_times,
        "smoke_median": smoke_median,
        "ratio": verify_median / smoke_median,
        "install_seconds": installed,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "verify.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "verify.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict[str, Any]) -> str:
    installed = result["install_seconds"]
    once = f"{installed:.1f} s" if installed is not None else "not measured (no npm)"
    row = (
        f"| `verify --target lambda --json` ({result['scenarios_run']} scenarios + the auth "
        f"chain) | {result['verify_median']:.2f} s | `smoke --target lambda --json` | "
        f"{result['smoke_median']:.2f} s | {result['ratio']:.2f}x |"
    )
    return f"""# verify on one deployment (bench/verify.py)

{result["when"]}, {result["machine"]}, {result["rounds"]} rounds interleaved, medians.

| figure | median | peer | peer median | ratio |
| --- | ---: | --- | ---: | ---: |
{row}

The deployment: examples/toolbox on Lambda-local (bearer), stateless, JSON responses. Both
are whole `mcp-deploy` processes against the same running deployment.

Where verify's time goes: inside `verify()` {result["verify_inner_median"]:.2f} s (the rest is
the CLI: start, spec, the deployment's state and token); each scenario is one suite process,
{result["scenario_median"]:.2f} s median with 4 running at once on this machine, of which a
bare suite process (`node <suite> --version`: Node's start and the suite's module graph, SDK,
express, undici, octokit) is {result["suite_process_median"]:.2f} s alone; the discovery chain
and the initialize probe take milliseconds. The suite runs one scenario (or a whole suite)
per process, so that start is paid per scenario; with 2 CPUs, 4 at a time is CPU-bound.

Once per machine: installing `@modelcontextprotocol/conformance` 0.1.16 and Node.js 22.23.5
from npm into an empty cache took {once}.
"""


if __name__ == "__main__":
    main()
