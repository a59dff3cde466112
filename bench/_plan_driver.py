"""`plan --offline` for all three targets in one process: what bench/plan.py times as "all three".

Imports the deploy flow, loads the specs, then runs `flow.plan_offline` for lambda, cloudrun
and workers (environment `staging`) one after another, as `mcp-deploy plan --offline` does
for one target, without rendering. The store must already hold the artifacts (bench/plan.py
warms it), so each plan reuses the stored artifact.

Prints one JSON object: the wall time of each phase (seconds, from the driver's first line),
the number of resources each plan declares and, with --modules, every `pulumi*` module the
run executed (not the SDKs' lazy placeholders for subpackages it never used). With --exit-now
it ends with `os._exit(0)`, skipping the interpreter's finalisation (for the bench's
where-the-time-goes figures).

Usage: python bench/_plan_driver.py --spec lambda=SPEC --spec cloudrun=SPEC
       --spec workers=SPEC [--modules] [--exit-now]
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ENVIRONMENT = "staging"
TARGETS = ("lambda", "cloudrun", "workers")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", action="append", default=[], help="TARGET=PATH")
    parser.add_argument("--modules", action="store_true")
    parser.add_argument(
        "--exit-now", action="store_true", help="end with os._exit: skip finalisation"
    )
    args = parser.parse_args()
    specs = dict(item.split("=", 1) for item in args.spec)

    phases: dict[str, float] = {}
    last = STARTED

    def mark(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        phases[name] = now - last
        last = now

    from orchestrator.deploy import flow
    from orchestrator.environments import Overrides
    from orchestrator.spec.loader import load_spec

    mark("import the flow")
    loaded = {target: load_spec(Path(specs[target])) for target in TARGETS}
    mark("load the specs")
    resources: dict[str, int] = {}
    for target in TARGETS:
        import stacks

        stacks.program_for(target)  # what plan_offline imports first: program + provider SDK
        mark(f"{target}: import the program and its SDK")
        _request, plan, _warnings = flow.plan_offline(
            loaded[target], ENVIRONMENT, target, Overrides(), lambda _message: None
        )
        mark(f"{target}: store lookup, request, program under mocks")
        resources[target] = len(plan.resources)

    result: dict[str, object] = {"phases_s": phases, "resources": resources}
    if args.modules:
        result["pulumi_modules"] = loaded_pulumi_modules()
    json.dump(result, sys.stdout)
    if args.exit_now:
        sys.stdout.flush()
        os._exit(0)
    return 0


def loaded_pulumi_modules() -> list[str]:
    """`pulumi*` modules in sys.modules that were executed: the SDKs register their
    subpackages as lazy modules (`importlib.util.LazyLoader`), run only when first used."""
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if name.startswith("pulumi") and type(module).__name__ != "_LazyModule"
    )


if __name__ == "__main__":
    sys.exit(main())
