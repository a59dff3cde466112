#!/usr/bin/env python3
"""Promotion of an unchanged artifact between two local-kind environments, against a fresh
deploy of the same server, side by side (issue: "Promotion of an unchanged artifact between
two local-kind environments against a fresh deploy of the same server (goal: <= 0.5x — no
build, no vendoring)").

Setup. A copy of examples/toolbox whose Cloud Run base is the tests' Debian Python base in
the local registry (`example_copy(image_base=True)`), plus a second local-kind environment
`qa` (`promote_from = "local"`, its own GREETING and `env:` secrets, as in
tests/integration/test_promotion.py). mcp-deploy's cache (MCP_DEPLOY_CACHE_DIR) is a
directory of this run's own. Untimed warm-up: a cold `build` of each target (traced with
`strace -e trace=connect` when strace is present), a deploy of each to `local` (the artifacts
that will be promoted, verified there), then one untimed pass of every timed command.

Timed, per target T in lambda and cloudrun, each a fresh process of the installed CLI
(.venv/bin/mcp-deploy) with MCP_DEPLOY_SPEC set, text output (stderr a pipe):
- subject: `mcp-deploy promote --from local --to qa --target T`: local's verified artifact,
  by digest, from the store, with qa's config and secrets; no build, no vendoring;
- peer, "a fresh deploy of the same server": `mcp-deploy --target T --env qa` with the
  project's artifact store (`.mcp-deploy/store`: artifacts, dependency layers, the base's
  blobs and its detected Python) and mcp-deploy's vendoring cache (`<cache>/vendor`) empty,
  so the artifact is built again and its dependencies vendored again (uv installs them from
  its own warm cache, offline). Both are moved aside for the command and put back after it
  (untimed), so the other target's artifact stays available to the promotions and the cached
  redeploys find a warm vendoring cache; the rebuilt artifact's digest is checked against the
  promoted one (the build is reproducible);
- second peer, informative: the same deploy with the artifact in the store (cached build).
Every command replaces the deployment running in qa (each ends with qa running T).

A round runs the six commands in an order shuffled per round (seeded). Medians across
rounds; the ratio is the median of the command over the median of the fresh deploy of the
same target. Progress lines on stderr are timestamped as they arrive, which splits each
command into phases (start-up and checks, build or artifact lookup, stopping the previous
deployment, starting the emulation, smoke test and records).

Network: every command runs with MCP_DEPLOY_REGISTRY_MIRRORS sending docker.io to a closed
loopback port and UV_OFFLINE=1 (uv's own cache must be warm: it is never cleared here).
At the end `destroy --env local` and `--env qa`, and the image Docker loaded for Cloud Run is
untagged when this run loaded it.

Usage: .venv/bin/python bench/promote.py [--rounds N] [--seed S]
       (writes bench/results/promote.{json,md}; needs `scripts/services start`)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import _common  # noqa: E402
from tests.support.debian_base import BaseImageError  # noqa: E402
from tests.support.example import QA_ENVIRONMENT, example_copy  # noqa: E402

CLI = str(REPO / ".venv" / "bin" / "mcp-deploy")
PYTHON = str(REPO / ".venv" / "bin" / "python")
RESULTS = REPO / "bench" / "results"
TARGETS = ("lambda", "cloudrun")
GOAL = 0.5

SECRETS = {
    "TOOLBOX_LOCAL_TOKEN": "bench-promote-local-token",
    "TOOLBOX_LOCAL_API_KEY": "bench-promote-local-key",
    "QA_TOKEN": "bench-promote-qa-token",
    "QA_API_KEY": "bench-promote-qa-key",
}
# Nothing but loopback: docker.io (the default Cloud Run base's registry) mirrored to a closed
# port; uv may not reach an index (its cache is warm).
GUARDS = {
    "MCP_DEPLOY_REGISTRY_MIRRORS": "docker.io=127.0.0.1:1/no-public-registry",
    "UV_OFFLINE": "1",
}

PROMOTE, FRESH, CACHED = "promote", "fresh", "cached"
KINDS = (PROMOTE, FRESH, CACHED)
COMMANDS = {
    PROMOTE: "`mcp-deploy promote --from local --to qa --target {t}`",
    FRESH: "fresh deploy: `mcp-deploy --target {t} --env qa`, empty store and build cache",
    CACHED: "cached redeploy: `mcp-deploy --target {t} --env qa`, artifact in the store",
}
# Progress lines that bound the phases (see `phases`).
MARKS = {
    "stop": "stopping the previous deployment",
    "start": ": starting sha256:",
    "smoke": ": smoke test of ",
}
PHASES = {
    "first_step": "start-up to the first step line (CLI, spec, checks; promote: also the "
    "record and artifact lookup)",
    "artifact": "build or store hit (promote: the lock)",
    "stop_previous": "stopping the previous qa deployment",
    "start_emulation": "starting the emulation (until its front door or port answers)",
    "smoke_and_record": "smoke test, records, exit",
}
_DIGEST = re.compile(r"artifact\s+\S+\s+(sha256:[0-9a-f]{64})")
_SMOKE = re.compile(r"cold start (\d+) ms .*?first response (\d+) ms")
_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


@dataclass
class Run:
    """One command: wall time, its stderr lines with their arrival times, its stdout."""

    elapsed: float
    steps: list[tuple[float, str]]
    out: str

    @property
    def digest(self) -> str:
        found = _DIGEST.search(self.out)
        if found is None:
            raise RuntimeError(f"no artifact digest in the output:\n{self.out}")
        return found.group(1)

    def smoke(self) -> dict[str, float]:
        found = _SMOKE.search(self.out)
        if found is None:
            raise RuntimeError(f"no smoke figures in the output:\n{self.out}")
        return {"cold_start_s": int(found[1]) / 1000, "first_response_s": int(found[2]) / 1000}

    def phases(self) -> dict[str, float]:
        first = self.steps[0][0] if self.steps else self.elapsed
        at: dict[str, float] = {}
        for name, needle in MARKS.items():
            seen = [t for t, line in self.steps if needle in line]
            if not seen:
                lines = "\n".join(line for _, line in self.steps)
                raise RuntimeError(f"no progress line with {needle!r}:\n{lines}")
            at[name] = seen[0]
        return {
            "first_step": first,
            "artifact": at["stop"] - first,
            "stop_previous": at["start"] - at["stop"],
            "start_emulation": at["smoke"] - at["start"],
            "smoke_and_record": self.elapsed - at["smoke"],
        }


class Project:
    """The example copy with `qa`, its own mcp-deploy cache, and the commands run on it."""

    def __init__(self, work: Path) -> None:
        try:
            self.spec = example_copy(work / "toolbox", image_base=True)
        except BaseImageError as error:
            raise SystemExit(f"{error}\n(run `scripts/services start` first)") from None
        self.spec.write_text(self.spec.read_text() + QA_ENVIRONMENT)
        self.store = self.spec.parent / ".mcp-deploy" / "store"
        self.cache = work / "mcp-deploy-cache"
        self.env = {
            **os.environ,
            **SECRETS,
            **GUARDS,
            "MCP_DEPLOY_SPEC": str(self.spec),
            "MCP_DEPLOY_CACHE_DIR": str(self.cache),
        }
        self.env.pop("MCP_DEPLOY_DEBUG", None)

    def run(self, *args: str, trace: Path | None = None) -> Run:
        """`mcp-deploy ARGS` in a fresh process; it must succeed."""
        argv = [CLI, *args]
        if trace is not None:
            argv = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *argv]
        return self._run(argv)

    def _run(self, argv: list[str]) -> Run:
        steps: list[tuple[float, str]] = []
        out: list[str] = []
        started = time.perf_counter()
        child = subprocess.Popen(
            argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stdout, stderr = child.stdout, child.stderr
        assert stdout is not None and stderr is not None
        reader = threading.Thread(target=lambda: out.append(stdout.read()))
        reader.start()
        for line in stderr:
            steps.append((time.perf_counter() - started, line.rstrip("\n")))
        code = child.wait()
        elapsed = time.perf_counter() - started
        reader.join()
        if code != 0:
            lines = "\n".join(line for _, line in steps)
            raise RuntimeError(f"{' '.join(argv[1:])} failed ({code}):\n{''.join(out)}{lines}")
        return Run(elapsed, steps, "".join(out))

    def python(self, code: str, trace: Path | None = None) -> None:
        argv = [PYTHON, "-c", code]
        if trace is not None:
            argv = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *argv]
        self._run(argv)

    @contextmanager
    def cold_build_state(self) -> Iterator[None]:
        """The store and the vendoring cache moved aside for the block, put back afterwards
        (what the block built is dropped: the same digest, checked). Putting the vendoring
        cache back matters: a build whose artifact is in the store still vendors first when
        the cache lacks its dependencies (the inputs hash is taken after `vendor`)."""
        moved = [self.store, self.cache / "vendor"]
        saved = [path.with_name(path.name + ".bench-saved") for path in moved]
        for path, aside in zip(moved, saved, strict=True):
            if path.exists():
                path.rename(aside)
        try:
            yield
        finally:
            for path, aside in zip(moved, saved, strict=True):
                if aside.exists():
                    shutil.rmtree(path, ignore_errors=True)
                    aside.rename(path)

    def timed(self, kind: str, target: str) -> Run:
        if kind == PROMOTE:
            return self.run("promote", "--from", "local", "--to", "qa", "--target", target)
        if kind == FRESH:
            with self.cold_build_state():
                return self.run("--target", target, "--env", "qa")
        return self.run("--target", target, "--env", "qa")

    def destroy(self) -> None:
        for environment in ("local", "qa"):
            try:
                self.run("destroy", "--env", environment)
            except RuntimeError as error:
                progress(f"warning: {error}")


def docker_tags() -> set[str]:
    listed = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return set(listed.split())


def warm_up(project: Project, work: Path) -> dict[str, Any]:
    """Cold builds (traced), the deploys to `local` that the promotions take their artifacts
    from, and one untimed pass of every timed command."""
    traced = shutil.which("strace") is not None
    seen: dict[str, set[str]] = {"loopback": set(), "other": set()}
    cold_builds: dict[str, float] = {}

    def note(trace: Path | None) -> None:
        if trace is not None:
            loopback, other = _common.remote_connects(trace)
            seen["loopback"] |= loopback
            seen["other"] |= other

    trace = work / "runtime.strace" if traced else None
    progress("setting up the Lambda runtime in this run's cache (uv, offline)")
    project.python(
        "from targets.aws_lambda.local_runtime import runtime_python; runtime_python('3.11')",
        trace,
    )
    note(trace)
    for target in TARGETS:
        trace = work / f"build-{target}.strace" if traced else None
        progress(f"cold build of {target}" + (" (traced)" if traced else ""))
        with project.cold_build_state():
            cold_builds[target] = project.run("build", "--target", target, trace=trace).elapsed
        note(trace)
        project.run("build", "--target", target)  # into the store for good
    digests: dict[str, str] = {}
    for target in TARGETS:
        progress(f"deploying {target} to local")
        digests[target] = project.run("--target", target).digest
    for kind in KINDS:
        for target in TARGETS:
            progress(f"warm-up: {kind} {target}")
            project.timed(kind, target)
    return {
        "digests": digests,
        "cold_builds_traced_s": cold_builds,
        "network_traced": traced,
        "connects_loopback": sorted(seen["loopback"]),
        "connects_other": sorted(seen["other"]),
    }


def measure(project: Project, rounds: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    jobs = [(kind, target) for kind in KINDS for target in TARGETS]
    runs: dict[tuple[str, str], list[Run]] = {job: [] for job in jobs}
    for number in range(1, rounds + 1):
        order = list(jobs)
        rng.shuffle(order)
        for kind, target in order:
            run = project.timed(kind, target)
            runs[(kind, target)].append(run)
            progress(f"round {number}/{rounds}: {kind} {target} {run.elapsed:.3f} s")
    return {"runs": runs}


def summarise(
    runs: dict[tuple[str, str], list[Run]], setup: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for target in TARGETS:
        fresh = statistics.median(r.elapsed for r in runs[(FRESH, target)])
        for kind in KINDS:
            sample = runs[(kind, target)]
            elapsed = [r.elapsed for r in sample]
            median = statistics.median(elapsed)
            phases = [r.phases() for r in sample]
            smokes = [r.smoke() for r in sample]
            digests = sorted({r.digest for r in sample})
            ratio = median / fresh
            table[f"{kind}/{target}"] = {
                "kind": kind,
                "target": target,
                "command": COMMANDS[kind].format(t=target),
                "samples_s": elapsed,
                "median_s": median,
                "min_s": min(elapsed),
                "max_s": max(elapsed),
                "ratio_to_fresh": ratio,
                "goal": GOAL if kind == PROMOTE else None,
                "met": (ratio <= GOAL) if kind == PROMOTE else None,
                "samples_phases_s": phases,
                "samples_smoke_s": smokes,
                "phases_median_s": {
                    name: statistics.median(p[name] for p in phases) for name in PHASES
                },
                "smoke_median_s": {
                    name: statistics.median(s[name] for s in smokes) for name in smokes[0]
                },
                "digests": digests,
                "same_digest_as_promoted": digests == [setup["digests"][target]],
            }
    return table


def write(result: dict[str, Any]) -> str:
    rows = result["rows"]
    setup = result["setup"]
    verdict = {True: "met", False: "**not met**", None: ""}
    lines = [
        "# Promotion between local-kind environments (bench/promote.py)",
        "",
        f"{result['when']}, {result['machine']}, Python {result['python']}, load average "
        f"{result['load_before']:.2f} before and {result['load_after']:.2f} after the rounds "
        "(a shared machine); "
        f"{result['rounds']} rounds, the six commands of a round in an order shuffled per round "
        f"(seed {result['seed']}); medians; every ratio is against the fresh deploy of the same "
        "target, measured in the same rounds.",
        "",
        "| command | target | median s | min - max s | ratio to fresh deploy | goal | met? |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows.values():
        goal = f"≤ {row['goal']}x" if row["goal"] is not None else "—"
        if row["kind"] == CACHED:
            goal = "— (informative)"
        lines.append(
            f"| {row['command']} | {row['target']} | {row['median_s']:.3f} | "
            f"{row['min_s']:.2f} - {row['max_s']:.2f} | {row['ratio_to_fresh']:.2f}x | {goal} | "
            f"{verdict[row['met']]} |"
        )
    promotions = [row for row in rows.values() if row["kind"] == PROMOTE]
    all_met = all(row["met"] for row in promotions)
    summary = ", ".join(
        f"{row['target']} {row['ratio_to_fresh']:.2f}x ({verdict[row['met']]})"
        for row in promotions
    )
    lines += [
        "",
        f"**Goal (≤ {GOAL}x a fresh deploy): {'met' if all_met else 'not met'}** — {summary}.",
        "",
        "## How it was run",
        "",
        "- A copy of `examples/toolbox` (`example_copy(image_base=True)`: the Cloud Run base is "
        "the tests' Debian Python base in the local registry, 127.0.0.1:5000) with a second "
        'local-kind environment `[environments.qa]`: `promote_from = "local"`, '
        '`config.GREETING = "Hello from qa"`, its own `env:` secrets (as in '
        "tests/integration/test_promotion.py).",
        "- Every command is a fresh process of the installed CLI (`.venv/bin/mcp-deploy`) with "
        "`MCP_DEPLOY_SPEC` set, text output with stderr a pipe (plain progress lines), "
        "`MCP_DEPLOY_CACHE_DIR` a directory of this run's own.",
        "- Before the rounds (untimed): a cold `build` of each target, a deploy of each to "
        "`local` (verified: these are the records and artifacts promoted), then one pass of "
        "the six commands.",
        "- **Promotion**: local's newest verified record for T, its artifact by digest from the "
        "project store, qa's config and secrets, qa's engine, gated by the smoke test. No build, "
        "no vendoring.",
        "- **Fresh deploy** (the peer) — cold: the project's artifact store "
        "(`.mcp-deploy/store`: artifacts, the Cloud Run dependency layers, the base image's "
        "blobs and its detected Python) and mcp-deploy's vendoring cache (`<cache>/vendor`) "
        "are empty, so the artifact is built again, its dependencies vendored again (`uv pip "
        "install --target` for the target platform, bytecode compiled), and for Cloud Run the "
        "base re-read and pulled from the local registry. Warm: uv's own wheel cache (never "
        "cleared; uv runs with `UV_OFFLINE=1`), the spec (its Cloud Run base pinned by "
        "digest, so no lock file is read or written), the Lambda "
        "runtime's venv (`<cache>/lambda-runtime`), the Lambda emulation's unpacked task root "
        "(`<cache>/lambda-local/tasks`, keyed by the zip's digest), the image Docker holds for "
        "Cloud Run (keyed by its config digest), the OS page cache. The store and the "
        "vendoring cache are moved aside for the command and put back after it (untimed); the "
        "rebuilt artifact had the "
        "promoted artifact's digest every time: "
        + ", ".join(
            f"{row['target']} {'yes' if row['same_digest_as_promoted'] else '**no**'}"
            for row in rows.values()
            if row["kind"] == FRESH
        )
        + ".",
        "- So the peer is the least a fresh deploy can cost here: with uv's own cache cold "
        "as well (wheels downloaded, which this run does not allow) or a Docker engine without "
        "the image, it would only take longer, and the promotion's ratio would drop.",
        "- **Cached redeploy** (informative): the same deploy with the store and vendoring "
        "cache as the promotion finds them (the build's inputs hash hits the store).",
        "- Each of the three replaces the deployment running in qa (stop the previous one "
        "gracefully, start, smoke test, record), so each pays the same engine work; the "
        "promotion differs from the cached redeploy only in looking up local's record instead "
        "of hashing the build's inputs.",
        "- Network: `MCP_DEPLOY_REGISTRY_MIRRORS=docker.io=127.0.0.1:1/no-public-registry` and "
        "`UV_OFFLINE=1` in every command's environment. "
        + (
            "The cold builds and the Lambda runtime's set-up were traced with "
            "`strace -f -e trace=connect`: connections to "
            + (", ".join(setup["connects_loopback"]) or "nothing")
            + " only"
            + (
                f"; **other addresses: {', '.join(setup['connects_other'])}**"
                if setup["connects_other"]
                else " (nothing off the machine)"
            )
            + ". The deploys' other connections go to the emulations on 127.0.0.1 and to "
            "Docker's unix socket."
            if setup["network_traced"]
            else "Not traced (no strace)."
        ),
        "- At the end: `destroy --env local`, `destroy --env qa`; the Docker image tag this "
        "run loaded (if any) removed.",
        "",
        "## Where the time goes",
        "",
        "Each command's stderr progress lines, timestamped as they arrived, split it into "
        "phases (medians in seconds; `cold start` and `first response` are the smoke test's "
        "own figures):",
        "",
        "| command | target | " + " | ".join(PHASES) + " | cold start | first response |",
        "| --- | --- | " + " | ".join("---:" for _ in PHASES) + " | ---: | ---: |",
    ]
    for row in rows.values():
        phases = row["phases_median_s"]
        smoke = row["smoke_median_s"]
        lines.append(
            f"| {row['kind']} | {row['target']} | "
            + " | ".join(f"{phases[name]:.2f}" for name in PHASES)
            + f" | {smoke['cold_start_s']:.2f} | {smoke['first_response_s']:.2f} |"
        )
    lines += ["", "Phases:", ""]
    lines += [f"- `{name}`: {text}" for name, text in PHASES.items()]
    lines += ["", *result["analysis"], "", *FINDINGS]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "promote.md").write_text(text)
    serialisable = {**result, "rows": rows}
    (RESULTS / "promote.json").write_text(json.dumps(serialisable, indent=2) + "\n")
    return text


FINDINGS = [
    "## Findings",
    "",
    "- A deploy (or `build`) whose artifact is already in the store still vendors first when "
    "mcp-deploy's vendoring cache lacks the dependencies: `package_lambda` "
    "(targets/aws_lambda/package.py) and `package_image` (targets/cloudrun/package.py) call "
    "`vendor()`, which installs, before `store.find`, although the inputs hash takes only the "
    "vendor key, a hash of the requirements known before anything is installed. Measured by "
    "hand on a copy like this one: `build --target lambda` with the zip in the store, about "
    "2.2 s with `<cache>/vendor` removed against 0.20 s with it; `build --target cloudrun`, "
    "2.4 s against 0.22 s. A CI runner that restores `.mcp-deploy/store` but not the cache "
    "re-vendors (with a cold uv cache, from the package index) only to find the artifact it "
    "has. A first trial of this bench, before it put the vendoring cache back after each fresh "
    "deploy, showed it: a cached Cloud Run redeploy took 4.09 s, 2.01 s of it vendoring. "
    "Promotion is not affected: it never calls the build.",
    "- Promotion's own steps (local's newest passing record, the artifact checked in the "
    "store, the lock: `first_step` + `artifact` above) cost what a redeploy's store hit costs; "
    "the rest is the engine's (stop, start, smoke test), which every deploy to qa pays. A "
    "promotion cannot get much below the cached redeploy: the emulation's start and the "
    "server's own cold start bound both.",
]


def analysis(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The paragraphs under the phase table, from the measured figures."""
    out: list[str] = []
    for target in TARGETS:
        promote = rows[f"{PROMOTE}/{target}"]
        fresh = rows[f"{FRESH}/{target}"]
        cached = rows[f"{CACHED}/{target}"]
        p, f = promote["phases_median_s"], fresh["phases_median_s"]
        engine = p["stop_previous"] + p["start_emulation"] + p["smoke_and_record"]
        out.append(
            f"**{target}.** The promotion takes {promote['median_s']:.2f} s: "
            f"{p['first_step']:.2f} s until its first step (CLI start-up, spec, the qa "
            f"engine's check, local's record and the artifact in the store), then "
            f"{engine:.2f} s of engine work every deploy to qa pays as well — stopping the "
            f"previous qa deployment ({p['stop_previous']:.2f} s), starting the emulation "
            f"({p['start_emulation']:.2f} s) and the smoke test with the records "
            f"({p['smoke_and_record']:.2f} s; the server answered its first MCP request "
            f"{promote['smoke_median_s']['cold_start_s']:.2f} s after the start). The fresh "
            f"deploy spends {f['artifact'] + f['first_step']:.2f} s before it stops anything "
            f"(of which the build, vendoring included, {f['artifact']:.2f} s), which the "
            f"promotion skips. The cached redeploy ({cached['median_s']:.2f} s, "
            f"{cached['ratio_to_fresh']:.2f}x) does the same engine work after a store hit; "
            f"the promotion takes {promote['median_s'] / cached['median_s']:.2f}x its time."
        )
        out.append("")
    out.append(
        "The remaining cost of a promotion is therefore the engine's, not promotion's: on "
        "Lambda the first MCP request starts the runtime client and imports the server (the "
        "`first response` column: Lambda's on-demand cold start, which the emulation "
        "reproduces); on Cloud Run the container's start until its port answers. Stopping the "
        "previous deployment is graceful (SIGTERM, the platform's grace, the supervisor or "
        "container waited for)."
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with (
        _common.exclusive(("bench-promote.lock", "bench-build.lock"), progress),
        tempfile.TemporaryDirectory(prefix="bench-promote-") as scratch,
    ):
        work = Path(scratch)
        tags_before = docker_tags()
        project = Project(work)
        try:
            setup = warm_up(project, work)
            load_before = os.getloadavg()[0]
            measured = measure(project, args.rounds, args.seed)
            load_after = os.getloadavg()[0]
        finally:
            progress("destroying local and qa")
            project.destroy()
            for tag in docker_tags() - tags_before:
                if tag.startswith("mcp-deploy/toolbox:"):
                    subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)
    rows = summarise(measured["runs"], setup)
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _common.machine(),
        "python": platform.python_version(),
        "rounds": args.rounds,
        "seed": args.seed,
        "load_before": load_before,
        "load_after": load_after,
        "goal": f"promote <= {GOAL}x the fresh deploy of the same target",
        "goal_met": all(row["met"] for row in rows.values() if row["kind"] == PROMOTE),
        "setup": setup,
        "rows": rows,
        "analysis": analysis(rows),
    }
    print(write(result))


if __name__ == "__main__":
    main()
