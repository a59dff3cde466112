"""Run conformance scenarios with the official suite and read what they found.

`node <suite>/dist/index.js server --url URL -o DIR --scenario NAME` writes
`DIR/server-<NAME>-<timestamp>/checks.json`: a list of checks, each with `id`, `name`,
`description`, `status` (SUCCESS, FAILURE, WARNING or INFO) and, when it failed or warned,
`errorMessage`; the command exits 1 when a check failed. One process per scenario (the suite
runs one scenario, or a whole suite, per invocation), a few at a time.

A scenario's status: `failed` when a check failed (or the suite ended without writing its
checks: crashed, timed out), `warning` when one warned, else `passed`. INFO checks are kept
out of the report (the suite logs each request as one).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.verify.toolchain import Toolchain

SCENARIO_TIMEOUT = 90.0  # seconds for one scenario (the suite's own waits are <= 10 s)
PARALLEL = 4
OUTPUT_TAIL = 1500  # characters of the suite's output kept when it wrote no checks
STATUSES = ("SUCCESS", "FAILURE", "WARNING", "INFO")


@dataclass(frozen=True)
class Check:
    id: str
    status: str
    description: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, str]:
        found = {"id": self.id, "status": self.status, "description": self.description}
        return {**found, "message": self.message} if self.message else found


@dataclass
class ScenarioResult:
    """One scenario's outcome. `status`: passed | warning | failed | unsupported (a failure
    the target cannot avoid: `note` says why; see `limits`)."""

    name: str
    status: str
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.status == "FAILURE"]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "checks": [check.to_dict() for check in self.checks],
        }
        if self.note:
            out["note"] = self.note
        return out


def parse_checks(document: Any) -> list[Check]:
    """The checks of a checks.json document that are not INFO (ValueError: not one)."""
    if not isinstance(document, list):
        raise ValueError("checks.json is not a list")
    checks: list[Check] = []
    for entry in document:
        if not isinstance(entry, dict) or entry.get("status") not in STATUSES:
            raise ValueError(f"not a check: {json.dumps(entry)[:200]}")
        if entry["status"] == "INFO":
            continue
        checks.append(
            Check(
                id=str(entry.get("id", "")),
                status=str(entry["status"]),
                description=str(entry.get("description", "")),
                message=str(entry.get("errorMessage") or ""),
            )
        )
    return checks


def scenario_status(checks: list[Check]) -> str:
    statuses = {check.status for check in checks}
    if "FAILURE" in statuses:
        return "failed"
    return "warning" if "WARNING" in statuses else "passed"


def read_result(name: str, output_dir: Path, returncode: int, output: str) -> ScenarioResult:
    """The result of scenario `name` from what its run left in `output_dir`."""
    found = sorted(output_dir.glob(f"server-{name}-*/checks.json"))
    if not found:
        tail = output.strip()[-OUTPUT_TAIL:]
        why = f"the suite wrote no results (exit status {returncode})"
        return ScenarioResult(name, "failed", [Check("suite", "FAILURE", why, tail)])
    try:
        checks = parse_checks(json.loads(found[-1].read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        return ScenarioResult(
            name, "failed", [Check("suite", "FAILURE", "unreadable checks.json", str(error))]
        )
    if not checks and returncode != 0:
        checks = [Check("suite", "FAILURE", f"the suite exited with status {returncode}")]
    return ScenarioResult(name, scenario_status(checks), checks)


def _environment() -> dict[str, str]:
    """The suite's environment: this one without anything it has no business seeing (no
    secrets pass through it: the token stays in verify's proxy), with colour turned off."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update({"NO_COLOR": "1", "FORCE_COLOR": "0", "NODE_NO_WARNINGS": "1"})
    return env


def run_scenario(
    tools: Toolchain, url: str, name: str, work: Path, timeout: float = SCENARIO_TIMEOUT
) -> ScenarioResult:
    """Run scenario `name` against `url` (results under `work/<name>`)."""
    output_dir = work / name
    output_dir.mkdir(parents=True, exist_ok=True)
    argv = tools.command("server", "--url", url, "-o", str(output_dir), "--scenario", name)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            argv,
            cwd=work,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
        returncode, output = done.returncode, done.stdout or ""
    except subprocess.TimeoutExpired:
        returncode, output = -1, f"the scenario took longer than {timeout:.0f} s"
    except OSError as error:
        returncode, output = -1, f"cannot run {tools.node}: {error.strerror}"
    result = read_result(name, output_dir, returncode, output)
    result.seconds = time.perf_counter() - started
    return result


def run_scenarios(
    tools: Toolchain,
    url: str,
    names: list[str],
    *,
    parallel: int = PARALLEL,
    progress: Callable[[str], None] = lambda _step: None,
) -> list[ScenarioResult]:
    """Run `names` against `url`, `parallel` at a time; results in the order of `names`."""
    if not names:
        return []
    with tempfile.TemporaryDirectory(prefix="mcp-deploy-verify-") as scratch:
        work = Path(scratch)

        def one(name: str) -> ScenarioResult:
            result = run_scenario(tools, url, name, work)
            progress(f"{name}: {result.status}")
            return result

        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            return list(pool.map(one, names))
