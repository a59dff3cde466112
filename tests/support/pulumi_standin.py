"""A recording stand-in for the `pulumi` CLI (standard library only).

`install(root)` writes `root/bin/pulumi`, which runs this file. Every call appends one JSON line
to `root/calls.jsonl`: argv, the whole environment, what stdin is, the working directory. It
answers the calls the Automation API makes (version, stack select/init/rm/output/tag/history,
preview, up, destroy) from `root/stacks.json`, the stacks it pretends to hold, and
`root/scenario.json`, what the test wants to happen:
- `outputs`: the stack outputs `up` leaves (plain values; a value {"secret": V} is secret);
- `up_outputs`: a list of such outputs, one per `up` in order (then `outputs` again);
- `events`: engine events (JSON, as the CLI writes them) written to the event log of preview/up;
- `fail`: command name -> {"stderr": ..., "stdout": ..., "code": N} to fail that command.

It reports version 3.200.0: new enough for inline programs in destroy (3.181), old enough that
the Automation API reads engine events from a file rather than over gRPC. It never runs the
program (that needs the engine's gRPC protocol); the programs are tested under the mock runtime.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

VERSION = "v3.200.0"


def install(root: Path) -> Path:
    """Write `root/bin/pulumi` (running this file with this interpreter); return it."""
    binary = root / "bin" / "pulumi"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} {root} "$@"\n')
    binary.chmod(0o755)
    return binary


def install_recorder(root: Path, real: Path) -> Path:
    """Write `root/bin/pulumi`, which records each call like the stand-in and then runs the
    real CLI at `real` with the same argv, environment and stdin; return it."""
    binary = root / "bin" / "pulumi"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text(
        f'#!/bin/sh\n{sys.executable} {Path(__file__).resolve()} --record-only {root} "$@"\n'
        f'exec {real} "$@"\n'
    )
    binary.chmod(0o755)
    return binary


def calls(root: Path) -> list[dict[str, Any]]:
    """Every call recorded so far."""
    path = root / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _load(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args[:-1] else None


def main(root: Path, args: list[str]) -> int:
    _record(root, args)
    return answer(root, args)


def _record(root: Path, args: list[str]) -> None:
    with (root / "calls.jsonl").open("a") as log:
        log.write(
            json.dumps(
                {
                    "argv": args,
                    "env": dict(os.environ),
                    "stdin": os.path.realpath("/proc/self/fd/0"),
                    "cwd": os.getcwd(),
                }
            )
            + "\n"
        )


def answer(root: Path, args: list[str]) -> int:
    """Answer a call as the stand-in (see the module docstring)."""
    words = [a for a in args if a != "--non-interactive"]
    if words[:1] == ["version"]:
        print(VERSION)
        return 0
    scenario = _load(root / "scenario.json", {})
    stacks_path = root / "stacks.json"
    stacks: dict[str, Any] = _load(stacks_path, {})
    command = " ".join(w for w in words[:2] if not w.startswith("-"))
    if words and words[0] in ("preview", "up", "destroy"):
        command = words[0]
    failure = scenario.get("fail", {}).get(command)
    if failure is not None:
        sys.stdout.write(failure.get("stdout", ""))
        sys.stderr.write(failure.get("stderr", "error: failed\n"))
        return int(failure.get("code", 255))
    name = _flag(words, "--stack") or (words[-1] if words[:2] == ["stack", "rm"] else None)
    if words[:2] == ["stack", "select"]:
        if name not in stacks:
            if "--create" not in words:
                sys.stderr.write(f"error: no stack named '{name}' found\n")
                return 255
            stacks[name] = {"outputs": {}, "tags": {}}
    elif words[:2] == ["stack", "init"]:
        stacks[words[2]] = {"outputs": {}, "tags": {}}
    elif words[:2] == ["stack", "rm"]:
        stacks.pop(str(name), None)
    elif words[:2] == ["stack", "output"]:
        outputs = stacks.get(str(name), {}).get("outputs", {})
        shown = {
            k: (v["secret"] if "--show-secrets" in words else "[secret]")
            if isinstance(v, dict) and "secret" in v
            else v
            for k, v in outputs.items()
        }
        print(json.dumps(shown))
    elif words[:3] == ["stack", "tag", "set"]:
        stacks[str(name)]["tags"][words[3]] = words[4]
    elif words[:3] == ["stack", "tag", "ls"]:
        print(json.dumps(stacks.get(str(name), {}).get("tags", {})))
    elif words[:2] == ["stack", "history"]:
        print(json.dumps([_summary()]))
    elif words[:1] in (["preview"], ["up"], ["destroy"]):
        current = _current(root)
        _events(_flag(words, "--event-log"), scenario.get("events", []))
        if words[0] == "up":
            queued = scenario.get("up_outputs", [])
            if queued:  # one set of outputs per `up`, in order
                stacks[current]["outputs"] = queued.pop(0)
                (root / "scenario.json").write_text(json.dumps(scenario))
            else:
                stacks[current]["outputs"] = scenario.get("outputs", {})
        elif words[0] == "destroy":
            stacks[current]["outputs"] = {}
    (stacks_path).write_text(json.dumps(stacks))
    if words[:2] in (["stack", "select"], ["stack", "init"]):
        (root / "current").write_text(str(name or words[2]))
    return 0


def _current(root: Path) -> str:
    return (root / "current").read_text()


def _summary() -> dict[str, Any]:
    return {
        "version": 1,
        "kind": "update",
        "startTime": "2026-12-01T00:00:00.000Z",
        "endTime": "2026-12-01T00:00:01.000Z",
        "message": "",
        "environment": {},
        "config": {},
        "result": "succeeded",
        "resourceChanges": {},
    }


def _events(log: str | None, events: list[dict[str, Any]]) -> None:
    if log is None:
        return
    summary = {
        "summaryEvent": {
            "maybeCorrupt": False,
            "durationSeconds": 1,
            "resourceChanges": {},
            "PolicyPacks": {},
        }
    }
    with open(log, "a") as out:
        for sequence, event in enumerate([*events, summary]):
            out.write(json.dumps({"sequence": sequence, "timestamp": 0, **event}) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "--record-only":
        _record(Path(sys.argv[2]), sys.argv[3:])
    else:
        sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
