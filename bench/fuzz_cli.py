#!/usr/bin/env python3
"""Fuzz the command line in-process: generated inputs through `orchestrator.cli.main(argv)`.

Phases (hypothesis, generation only: no shrinking, no example database):
- documents: random TOML documents from the spec's vocabulary (tests/unit/test_loader_fuzz.py);
- mutations: the example spec with keys deleted, renamed, retyped or inserted, values replaced
  by hostile ones (deep nesting, huge strings, control characters, NUL, odd unicode, paths to
  FIFOs and devices, invalid patterns);
- text: the example's text edited line by line (duplicated lines = duplicate keys, deleted,
  truncated, hostile lines and raw bytes inserted), and raw random bytes;
- argv: command lines for validate, config explain, schema, init (inside the scratch
  directory) and smoke (loopback URLs on closed ports only; nothing else is contacted).
Each spec is run through `validate` or `config explain`. The bar, per input: no exit 70, no
traceback, no exception out of `main`, no run longer than HANG_SECONDS, no raw control
character on stderr in text mode, valid JSON on stdout under --json.

Usage: .venv/bin/python bench/fuzz_cli.py [--total N] [--seed S]
Writes bench/results/fuzz_cli.md and .json.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import re
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import hypothesis  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench import _common  # noqa: E402
from orchestrator.cli import main  # noqa: E402
from orchestrator.cli.render import OutputMode  # noqa: E402
from tests.unit.test_loader_fuzz import EXAMPLE, _mutate, _paths, documents, dump, values  # noqa: E402

RESULTS = REPO / "bench" / "results"
HANG_SECONDS = 30.0
LOOPBACK = (None, "", "127.0.0.1", "::1")
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
SHARES = {"documents": 0.2, "mutations": 0.25, "text": 0.2, "raw": 0.05, "argv": 0.3}
SPEC_COMMANDS = [
    ["validate"],
    ["validate", "--json"],
    ["validate", "--env", "prod"],
    ["config", "explain"],
    ["config", "explain", "--json"],
    ["config", "explain", "--env", "staging", "--target", "lambda"],
    ["config", "explain", "--env", "prod", "--target", "cloudrun", "--json"],
]
HOSTILE = [
    "", "\x00", "a\x00b", "\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "\r\n", "\u202egnp.py",
    "\ufeff", "é", "\u0301", "😀" * 50, "a" * 5000, "a/" * 3000, "../" * 40, "/", "..", "~",
    "/dev/zero", "/dev/stdin", "../fifo", "file:../fifo", "file:/dev/zero", "file:/dev/stdin",
    "file:~/nope", "file:" + "a" * 5000, "file:secret.txt", "env:X", "[z-a]", "\\", "a\\", "!",
    "**/" * 200, "[/bold]", "[red]x[/]", "toolbox.app:app", "x" * 300 + ".app:app", "%s%n",
    "$(id)", "null",
]  # fmt: skip


class Hang(BaseException):
    """Raised by the alarm in an input that runs longer than HANG_SECONDS."""


def _alarm(_signum: int, _frame: object) -> None:
    raise Hang


def run_cli(argv: list[str]) -> tuple[int | str, str, str]:
    """`main(argv)` in this process: (exit code or 'hang'/'escaped', stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    term = signal.getsignal(signal.SIGTERM)
    alarm = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    code: int | str
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(argv))
    except Hang:
        code = "hang"
    except BaseException:
        code = "escaped"
        err.write(traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, alarm)
        signal.signal(signal.SIGTERM, term)
        OutputMode.json = False
    return code, out.getvalue(), err.getvalue()


def verdict(argv: list[str], code: int | str, out: str, err: str) -> str | None:
    """Why this outcome misses the bar, or None."""
    if isinstance(code, str):
        return code
    if code == 70:
        return "exit 70"
    if "Traceback (most recent call last)" in out + err:
        return "traceback"
    if out.lstrip().startswith("{"):
        try:
            json.loads(out)
        except ValueError:
            return "invalid JSON on stdout"
    if RAW_CONTROL.search(err):
        return "raw control character on stderr"
    return None


class Tally:
    """Exit codes and misses per phase."""

    def __init__(self) -> None:
        self.codes: dict[str, Counter[str]] = {}
        self.seconds: dict[str, float] = {}
        self.misses: list[dict[str, Any]] = []
        self.raw_stdout: list[dict[str, str]] = []  # stdout echoing a raw control character

    def record(self, phase: str, argv: list[str], spec: bytes | None) -> None:
        code, out, err = run_cli(argv)
        self.codes.setdefault(phase, Counter())[str(code)] += 1
        if RAW_CONTROL.search(out):
            self.raw_stdout.append({"phase": phase, "argv": repr(argv)[:300], "out": out[-300:]})
        why = verdict(argv, code, out, err)
        if why is not None:
            self.misses.append(
                {
                    "phase": phase,
                    "why": why,
                    "argv": repr(argv)[:400],
                    "spec": repr(spec)[:400] if spec is not None else None,
                    "output": (err or out)[-600:],
                }
            )


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(HOSTILE),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
        st.text(st.characters(max_codepoint=0x9F), max_size=20),
        st.integers(1000, 1_500_000).map(lambda n: "x" * n),
    )


def nested(depth: int, kind: str) -> str:
    """A TOML value nested `depth` levels: arrays, inline tables or dotted keys."""
    if kind == "array":
        return "[" * depth + "1" + "]" * depth
    if kind == "table":
        return "{a = " * depth + "1" + "}" * depth
    return ".".join(["k"] * depth)


def spec_text(document: dict[str, Any]) -> bytes | None:
    try:
        text = dump(document)
    except RecursionError:
        return None
    return text.encode("utf-8", "surrogatepass") if text is not None else None


def line_edit(lines: list[str], op: str, index: int, extra: str, depth: int) -> list[str]:
    """One text-level edit of the example's lines."""
    index %= max(len(lines), 1)
    if op == "duplicate":
        return [*lines[: index + 1], lines[index], *lines[index + 1 :]]
    if op == "delete":
        return lines[:index] + lines[index + 1 :]
    if op == "truncate":
        return [*lines[:index], lines[index][: len(lines[index]) // 2]]
    inserted = {
        "deep array": f"deep = {nested(depth, 'array')}",
        "deep table": f"deep = {nested(depth, 'table')}",
        "deep key": f"{nested(depth, 'key')} = 1",
        "deep header": f"[{nested(depth, 'key')}]",
        "value": f"{lines[index].split('=')[0].strip() or 'x'} = {json.dumps(extra)}",
        "raw": extra,
    }[op]
    return [*lines[:index], inserted, *lines[index:]]


LINE_OPS = [
    "duplicate", "delete", "truncate", "deep array", "deep table", "deep key", "deep header",
    "value", "raw",
]  # fmt: skip


def argv_strategy(closed_port: int) -> st.SearchStrategy[list[str]]:
    """Command lines for the safe commands (see module docstring)."""
    name = st.one_of(
        st.sampled_from(["local", "staging", "prod", "lambda", "cloudrun", "workers", "nope"]),
        hostile_text().filter(lambda s: len(s) < 10_000),
    )
    pair = st.tuples(st.one_of(name, st.just("memory")), name).map(lambda p: f"{p[0]}={p[1]}")
    deep = st.integers(1, 3000).map(lambda n: f"memory={nested(n, 'array')}")
    relative = st.one_of(
        st.sampled_from(["out.json", "missing/dir/x.json", "a" * 300, "x\x00y", "proj", ""]),
        st.text(min_size=1, max_size=30),
    ).filter(lambda s: not s.startswith(("/", "~", "-")) and ".." not in s and s != "fifo")
    url = st.builds(
        lambda scheme, host, path: f"{scheme}{host}{path}",
        st.sampled_from(["http://", "https://", "ftp://", "", "HTTP://", "javascript:"]),
        st.sampled_from(
            [
                f"127.0.0.1:{closed_port}",
                f"[::1]:{closed_port}",
                "[::1",
                "127.0.0.1:99999",
                "127.0.0.1:-1",
                "",
                "\x00",
                f"127.0.0.1 :{closed_port}",
            ]
        ),
        st.one_of(
            st.sampled_from(["/mcp", "", "/\x1b[2J", "?a=b"]),
            st.text(max_size=20).filter(lambda text: "@" not in text and "\\" not in text),
        ),
    )
    smoke_flags = st.lists(
        st.one_of(
            st.tuples(st.just("--timeout"), st.sampled_from(["0", "-1", "nan", "inf", "0.3", "x"])),
            st.tuples(st.just("--arguments"), st.sampled_from(["{}", "[]", "{", '{"a": 1}', ""])),
            st.tuples(st.just("--tool"), name),
            st.tuples(st.just("--expect"), name),
            st.tuples(st.just("--token-env"), st.sampled_from(["NOPE_UNSET", "PATH", "", "\x00"])),
            st.tuples(st.sampled_from(["--json"])),
        ),
        max_size=4,
    ).map(lambda flags: [part for flag in flags for part in flag])
    explain = st.lists(
        st.one_of(
            st.tuples(st.sampled_from(["--env", "--target"]), name),
            st.tuples(st.just("--set"), st.one_of(pair, deep)),
            st.tuples(st.just("--config"), pair),
            st.tuples(st.just("--json")),
        ),
        max_size=5,
    ).map(lambda flags: ["config", "explain", *[part for flag in flags for part in flag]])
    command = st.one_of(
        explain,
        st.builds(
            lambda env, j: ["validate", *(["--env", env] if env else []), *j],
            st.none() | name,
            st.sampled_from([[], ["--json"]]),
        ),
        st.builds(lambda o: ["schema", *(["-o", o] if o else [])], st.none() | relative),
        st.sampled_from([["schema", "-o", "/dev/full"], ["schema", "-o", "/dev/null"]]),
        st.builds(
            lambda d, n: ["init", "init/" + d, *(["--name", n] if n else [])],
            relative,
            st.none() | name,
        ),
        st.builds(lambda u, f: ["smoke", u, *f], url, smoke_flags),
        st.builds(lambda t, f: ["smoke", "--target", t, *f], name, smoke_flags),
    )
    spec = st.sampled_from(
        [[], ["--spec", "proj/mcp-deploy.toml"], ["--spec", "fifo"], ["--spec", "/dev/zero"],
         ["--spec", "proj"], ["--spec", "missing.toml"], ["--spec", "a" * 5000], ["--spec", ""],
         ["--spec", "x\x00y"], ["--spec=proj/mcp-deploy.toml"]]
    )  # fmt: skip
    noise = st.lists(st.sampled_from(["--json", "--help", "-o", "--env", "--", "-x", "\x00"]))
    return st.builds(
        lambda s, c, n, at: [*s, *c[:at], *n, *c[at:]] if n else [*s, *c],
        spec, command, noise, st.integers(0, 6)
    )  # fmt: skip


def loopback_only(argv: list[str]) -> bool:
    """False for a smoke URL that names a host other than 127.0.0.1 or ::1 (never contacted)."""
    for arg in argv:
        try:
            parts = urlsplit(arg)
        except ValueError:
            continue
        if parts.scheme.lower() in ("http", "https") and parts.hostname not in LOOPBACK:
            return False
    return True


def workspace(root: Path) -> Path:
    """The scratch directory (the run's cwd, with a FIFO and a copy of the example spec) and
    its project `proj/` (the example's package and a secret file); returns the spec path."""
    project = root / "proj"
    (project / "toolbox").mkdir(parents=True)
    (project / "toolbox" / "__init__.py").write_text("")
    (project / "toolbox" / "app.py").write_text("app = None\n")
    (project / "secret.txt").write_text("s3cret\n")
    os.mkfifo(root / "fifo")
    (project / "mcp-deploy.toml").write_bytes(
        (REPO / "examples/toolbox/mcp-deploy.toml").read_bytes()
    )
    (root / "init").mkdir()
    (root / "mcp-deploy.toml").write_bytes((project / "mcp-deploy.toml").read_bytes())
    return project / "mcp-deploy.toml"


def phases(
    tally: Tally, spec_path: Path, closed_port: int, seed: int
) -> dict[str, Callable[[int], None]]:
    """Each phase as a function of its example count."""

    def fuzz(n: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
        def wrap(test: Callable[..., None]) -> Callable[..., None]:
            configured: Callable[..., None] = hypothesis.seed(seed)(_settings(n)(test))
            return configured

        return wrap

    example_lines = (REPO / "examples/toolbox/mcp-deploy.toml").read_text().splitlines()
    command = st.sampled_from(SPEC_COMMANDS)
    base = ["--spec", str(spec_path)]

    def run_spec(phase: str, data: bytes | None, argv: list[str]) -> None:
        if data is None:
            return
        spec_path.write_bytes(data)
        tally.record(phase, [*base, *argv], data)

    def documents_phase(n: int) -> None:
        @fuzz(n)
        @given(documents, command)
        def run(document: dict[str, Any], argv: list[str]) -> None:
            run_spec("documents", spec_text(document), argv)

        run()

    def mutations_phase(n: int) -> None:
        replacement = st.one_of(values, hostile_text(), st.integers(1, 120).map(_deep_list))

        @fuzz(n)
        @given(st.data(), st.integers(1, 4), command)
        def run(data: st.DataObject, steps: int, argv: list[str]) -> None:
            document = copy.deepcopy(EXAMPLE)
            for _ in range(steps):
                paths = _paths(document)
                if not paths:
                    break
                path = data.draw(st.sampled_from(paths))
                action = data.draw(st.sampled_from(["delete", "replace", "rename", "insert"]))
                key = data.draw(st.one_of(st.sampled_from(HOSTILE[:12]), st.text(max_size=8)))
                _mutate(document, path, action, data.draw(replacement), key)
            run_spec("mutations", spec_text(document), argv)

        run()

    def text_phase(n: int) -> None:
        edit = st.tuples(
            st.sampled_from(LINE_OPS), st.integers(0, 200), hostile_text(), st.integers(1, 2000)
        )

        @fuzz(n)
        @given(st.lists(edit, min_size=1, max_size=3), command)
        def run(edits: list[tuple[str, int, str, int]], argv: list[str]) -> None:
            lines = list(example_lines)
            for op, index, extra, depth in edits:
                lines = line_edit(lines, op, index, extra, depth)
            run_spec("text", "\n".join(lines).encode("utf-8", "surrogatepass"), argv)

        run()

    def raw_phase(n: int) -> None:
        @fuzz(n)
        @given(st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode)), command)
        def run(data: bytes, argv: list[str]) -> None:
            run_spec("raw", data, argv)

        run()

    def argv_phase(n: int) -> None:
        @fuzz(n)
        @given(argv_strategy(closed_port).filter(loopback_only))
        def run(argv: list[str]) -> None:
            spec_path.write_bytes((REPO / "examples/toolbox/mcp-deploy.toml").read_bytes())
            tally.record("argv", argv, None)

        run()

    return {
        "documents": documents_phase,
        "mutations": mutations_phase,
        "text": text_phase,
        "raw": raw_phase,
        "argv": argv_phase,
    }


def _deep_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _settings(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def report(tally: Tally, args: argparse.Namespace, elapsed: float) -> dict[str, Any]:
    total: Counter[str] = Counter()
    for counts in tally.codes.values():
        total.update(counts)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _common.machine(),
        "python": sys.version.split()[0],
        "hypothesis": hypothesis.__version__,
        "seed": args.seed,
        "inputs": sum(total.values()),
        "seconds": round(elapsed, 1),
        "exit_codes": dict(sorted(total.items())),
        "phases": {
            phase: {
                "inputs": sum(counts.values()),
                "seconds": round(tally.seconds[phase], 1),
                "exit_codes": dict(sorted(counts.items())),
            }
            for phase, counts in tally.codes.items()
        },
        "stdout_with_raw_control": len(tally.raw_stdout),
        "examples_of_stdout_with_raw_control": tally.raw_stdout[:5],
        "misses": len(tally.misses),
        "miss_kinds": dict(Counter(miss["why"] for miss in tally.misses)),
        "examples_of_misses": tally.misses[:20],
    }


def markdown(data: dict[str, Any]) -> str:
    codes = sorted({code for p in data["phases"].values() for code in p["exit_codes"]})
    lines = [
        "# CLI fuzz (bench/fuzz_cli.py)",
        "",
        f"{data['date']}, {data['machine']}, Python {data['python']}, hypothesis "
        f"{data['hypothesis']}, seed {data['seed']}: **{data['inputs']} inputs** in "
        f"{data['seconds']} s, in-process through `orchestrator.cli.main`.",
        "",
        "| phase | inputs | seconds | " + " | ".join(f"exit {c}" for c in codes) + " |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in codes) + " |",
    ]
    for phase, row in data["phases"].items():
        cells = " | ".join(str(row["exit_codes"].get(c, 0)) for c in codes)
        lines.append(f"| {phase} | {row['inputs']} | {row['seconds']} | {cells} |")
    cells = " | ".join(str(data["exit_codes"].get(c, 0)) for c in codes)
    lines.append(f"| **all** | **{data['inputs']}** | {data['seconds']} | {cells} |")
    lines += [
        "",
        f"Misses of the bar (exit 70, traceback, exception out of main, run > {HANG_SECONDS:.0f}"
        f" s, raw control character on stderr, invalid JSON under --json): **{data['misses']}**"
        + (f" ({data['miss_kinds']})" if data["misses"] else "") + ".",
        "",
        "Exit 0: a valid input; 1: the operation failed (smoke against a closed port, a write to"
        " /dev/full); 2: invalid input, reported with the file, key or flag.",
        "",
        f"Not part of the bar: {data['stdout_with_raw_control']} successful outputs on stdout"
        " echoed a raw control character (see `examples_of_stdout_with_raw_control` in the .json;"
        " `init` prints the directory it was given, which the file system accepted).",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main_bench() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--total", type=int, default=10_000, help="inputs in all (default 10000)")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--out", type=Path, default=RESULTS / "fuzz_cli")
    args = parser.parse_args()
    os.environ.pop("MCP_DEPLOY_SPEC", None)
    os.environ.pop("MCP_DEPLOY_DEBUG", None)
    tally = Tally()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mcp-deploy-fuzz-") as scratch:
        cwd = os.getcwd()
        spec_path = workspace(Path(scratch))
        os.chdir(scratch)
        try:
            port = closed_loopback_port()
            for phase, run in phases(tally, spec_path, port, args.seed).items():
                began = time.perf_counter()
                run(max(1, round(args.total * SHARES[phase])))
                tally.seconds[phase] = time.perf_counter() - began
                print(f"{phase}: {dict(tally.codes.get(phase, {}))}", file=sys.stderr)
        finally:
            os.chdir(cwd)
    data = report(tally, args, time.perf_counter() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(data))
    print(markdown(data))
    return 0 if data["misses"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main_bench())
