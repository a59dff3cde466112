"""A fleet: every spec under a directory, for CI fan-outs and fleet-wide `status` and `plan`.

`find_specs` walks the directory the way spec discovery looks at one directory (an
`mcp-deploy.toml` wins over a `pyproject.toml` beside it; a `pyproject.toml` counts only with a
`[tool.mcp-deploy]` table) and skips what is never a project of its own: hidden directories,
virtual environments, `node_modules`, caches and build output. `matrix` lists server x target x
environment for every spec that loads; `status` and `plan` run the one-spec operation for each
spec in turn. A spec that fails (it does not load, or its operation fails) is reported with its
error and does not stop the others; `worst_exit` folds the exit codes into one.

Nothing here renders: the command line (`orchestrator.cli.fleet_commands`) does. The deploy
layer is imported inside the functions that need it (start-up stays fast).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from orchestrator.errors import InputError, OperationError, input_error
from orchestrator.files import UnreadableFile, read_regular_file
from orchestrator.spec.loader import MAX_DEPTH, MAX_SPEC_BYTES, PYPROJECT, SPEC_FILE, LoadedSpec
from orchestrator.spec.locate import deepest_nesting

if TYPE_CHECKING:
    from orchestrator.deploy.engine import OfflinePlan
    from orchestrator.deploy.flow import Plan
    from orchestrator.deploy.observe import Status
    from orchestrator.deploy.request import DeploymentRequest

T = TypeVar("T")
Progress = Callable[[str], None]
OfflinePlanned = tuple["DeploymentRequest", "OfflinePlan", list[str]]

# Directory names never searched (besides every hidden one, `.mcp-deploy` and `.venv` included).
SKIPPED_DIRS = frozenset({"venv", "node_modules", "__pycache__", "dist", "build"})

# Exit codes from the worst to the least bad: bad input needs a person; a failure (a
# smoke test that failed, not rolled back, before one that was) is worse than a busy stack,
# which a retry may clear. A code not listed ranks just above 0.
SEVERITY = (2, 1, 4, 3, 75)

_TOOL_HEADER = re.compile(r"""^\s*\[\s*tool\s*\.\s*["']?mcp-deploy["']?\s*[\].]""", re.M)


def find_specs(directory: Path) -> list[Path]:
    """Every spec file under `directory` (recursive), sorted by relative path: an
    `mcp-deploy.toml`, else a `pyproject.toml` with a `[tool.mcp-deploy]` table (one that is
    not valid TOML counts when a `[tool.mcp-deploy…]` header is written in it, so that its
    error is reported rather than the spec silently left out). Hidden directories and
    `SKIPPED_DIRS` are not entered, nor symlinked directories; a symlinked spec file counts
    only when it points inside `directory`. `InputError` when `directory` is not a directory."""
    if not directory.is_dir():
        raise input_error(
            "DIR", f"'{directory}' is not a directory", "name a directory that holds spec files"
        )
    root = directory.resolve()
    found: list[Path] = []
    for current, subdirs, files in os.walk(directory, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        here = Path(current)
        names = set(files)
        if SPEC_FILE in names and _counts(here / SPEC_FILE, root):
            found.append(here / SPEC_FILE)
        elif PYPROJECT in names and _counts(here / PYPROJECT, root) and _declares(here / PYPROJECT):
            found.append(here / PYPROJECT)
    return sorted(found, key=lambda path: path.relative_to(directory).parts)


def _counts(path: Path, root: Path) -> bool:
    """A regular file (through a symlink only when it stays inside `root`)."""
    if not path.is_file():
        return False
    return not path.is_symlink() or path.resolve().is_relative_to(root)


def _declares(pyproject: Path) -> bool:
    """True when `pyproject` has a `[tool.mcp-deploy]` table (see `find_specs`)."""
    try:
        data = read_regular_file(pyproject, MAX_SPEC_BYTES)
    except UnreadableFile:
        return False
    if b"mcp-deploy" not in data:  # most pyproject.toml files: no need to parse them
        return False
    text = data.decode("utf-8", errors="replace")
    try:
        if deepest_nesting(text, MAX_DEPTH) is not None:
            raise ValueError("too deep")
        document = tomllib.loads(text)
    except (ValueError, RecursionError):  # TOMLDecodeError is a ValueError
        return _TOOL_HEADER.search(text) is not None
    tool = document.get("tool")
    return isinstance(tool, dict) and "mcp-deploy" in tool


@dataclass(frozen=True)
class FleetSpec:
    """One spec of the fleet: its path relative to the fleet's directory (`name`, with `/`),
    and the spec, or why it did not load."""

    name: str
    path: Path
    loaded: LoadedSpec | None
    error: InputError | None = None

    @property
    def server(self) -> str | None:
        return self.loaded.spec.server.name if self.loaded is not None else None


def load_fleet(directory: Path) -> list[FleetSpec]:
    """Every spec under `directory`, loaded (`InputError` when there is none)."""
    from orchestrator.spec.loader import load_spec

    paths = find_specs(directory)
    if not paths:
        raise input_error(
            "DIR",
            f"no {SPEC_FILE} (or {PYPROJECT} with [tool.mcp-deploy]) found under '{directory}'",
            "hidden directories, virtual environments, node_modules, dist and build are not "
            "searched",
        )
    fleet: list[FleetSpec] = []
    for path in paths:
        name = path.relative_to(directory).as_posix()
        try:
            fleet.append(FleetSpec(name, path, load_spec(path)))
        except InputError as error:
            fleet.append(FleetSpec(name, path, None, error))
    return fleet


def check_filters(
    fleet: Iterable[FleetSpec], environment: str | None, target: str | None = None
) -> None:
    """`InputError` for a target this version does not know, or an environment no spec of
    the fleet that loaded declares (with did-you-mean)."""
    from orchestrator.environments import get_target
    from orchestrator.suggest import hint_for

    if target is not None:
        get_target(target)
    loaded = [spec.loaded for spec in fleet if spec.loaded is not None]
    if environment is None or not loaded:
        return
    names = {name for item in loaded for name in item.spec.environment_names()}
    if environment not in names:
        raise input_error(
            "--env",
            f"no spec here has an environment '{environment}'",
            hint_for(environment, names, noun="environment"),
        )


def targets_of(loaded: LoadedSpec, environment: str) -> list[str]:
    """The targets `environment` of the spec deploys to: the ones declared at the top level
    and the ones declared only in the environment's own layer, sorted."""
    from orchestrator.spec.server_checks import targets_in

    return targets_in(loaded.spec, environment)


@dataclass(frozen=True)
class MatrixEntry:
    """One deployable combination: a spec's server on a target in one of its environments."""

    spec: str
    server: str
    target: str
    environment: str
    kind: str
    promote_from: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "server": self.server,
            "target": self.target,
            "environment": self.environment,
            "kind": self.kind,
            "promote_from": self.promote_from,
        }


@dataclass(frozen=True)
class Matrix:
    """The entries of every spec that loaded, and the specs that did not."""

    entries: list[MatrixEntry]
    failed: list[FleetSpec] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 2 if self.failed else 0


def matrix(
    directory: Path,
    environment: str | None = None,
    target: str | None = None,
    kind: str | None = None,
) -> Matrix:
    """Server x target x environment for every spec under `directory`, in spec order, then
    the spec's environment order (`local` first), then target name; only the entries of
    `environment`, `target` and engine `kind` when given."""
    fleet = load_fleet(directory)
    check_filters(fleet, environment, target)
    entries: list[MatrixEntry] = []
    for item in fleet:
        if item.loaded is None:
            continue
        spec = item.loaded.spec
        for env_name in spec.environment_names():
            env_kind = spec.environment_kind(env_name)
            if environment not in (None, env_name) or kind not in (None, env_kind):
                continue
            for target_name in targets_of(item.loaded, env_name):
                if target in (None, target_name):
                    entries.append(
                        MatrixEntry(
                            spec=item.name,
                            server=spec.server.name,
                            target=target_name,
                            environment=env_name,
                            kind=env_kind,
                            promote_from=spec.environment(env_name).promote_from,
                        )
                    )
    return Matrix(entries, [item for item in fleet if item.error is not None])


@dataclass(frozen=True)
class Attempt(Generic[T]):
    """The result of one operation, or the error that ended it."""

    value: T | None = None
    error: InputError | OperationError | None = None

    @property
    def exit_code(self) -> int:
        if self.error is None:
            return 0
        if isinstance(self.error, InputError):
            return 2
        return self.error.exit_code


def attempt(action: Callable[[], T]) -> Attempt[T]:
    """Run `action`, keeping an input or operation error as the result (anything else, an
    interruption included, propagates)."""
    try:
        return Attempt(value=action())
    except (InputError, OperationError) as error:
        return Attempt(error=error)


@dataclass(frozen=True)
class SpecRun(Generic[T]):
    """One spec's part of a fleet operation: its result or error, or why it was skipped (it
    lacks the environment asked for)."""

    spec: str
    server: str | None
    outcome: Attempt[T]
    skipped: str | None = None

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code


def worst_exit(codes: Iterable[int]) -> int:
    """The exit code of a fleet operation: the worst of its parts in `SEVERITY` order
    (2 > 1 > 4 > 3 > 75 > any other nonzero > 0)."""

    def rank(code: int) -> int:
        return len(SEVERITY) - SEVERITY.index(code) + 1 if code in SEVERITY else int(code != 0)

    return max(codes, key=rank, default=0)


def _each(
    fleet: list[FleetSpec],
    environment: str | None,
    run: Callable[[LoadedSpec], T],
) -> Iterator[SpecRun[T]]:
    for item in fleet:
        if item.loaded is None:
            yield SpecRun(item.name, None, Attempt(error=item.error))
        elif environment is not None and environment not in item.loaded.spec.environment_names():
            skipped = f"no environment '{environment}'"
            yield SpecRun(item.name, item.server, Attempt(), skipped)
        else:
            yield SpecRun(item.name, item.server, attempt(partial(run, item.loaded)))


def status(directory: Path, environment: str | None = None) -> list[SpecRun[list[Status]]]:
    """`observe.status` for every spec under `directory` (of `environment` only, when given;
    a spec without it is skipped)."""
    from orchestrator.deploy import observe

    fleet = load_fleet(directory)
    check_filters(fleet, environment)
    return list(_each(fleet, environment, lambda loaded: observe.status(loaded, environment)))


@dataclass(frozen=True)
class TargetPlan:
    """The plan of one target: a `Plan`, or with `offline` the request, the resources the
    program declares and the warnings (see `flow.plan_offline`)."""

    target: str
    outcome: Attempt[Plan | OfflinePlanned]


def plan(
    directory: Path,
    environment: str,
    target: str | None,
    offline: bool,
    progress: Progress,
) -> list[SpecRun[list[TargetPlan]]]:
    """`flow.plan` (or `flow.plan_offline`) of `environment` on every target it deploys to
    (only `target`, when given), for every spec under `directory`. A spec without the
    environment is skipped; one target's error does not stop the spec's other targets."""
    from orchestrator.deploy import flow
    from orchestrator.environments import Overrides

    fleet = load_fleet(directory)
    check_filters(fleet, environment, target)

    def run(loaded: LoadedSpec) -> list[TargetPlan]:
        def step(text: str) -> None:  # the flow's steps name the target
            progress(f"{loaded.spec.server.name}: {text}")

        plans: list[TargetPlan] = []
        for each in targets_of(loaded, environment):
            if target not in (None, each):
                continue

            def one(each: str = each) -> Plan | OfflinePlanned:
                if offline:
                    return flow.plan_offline(loaded, environment, each, Overrides(), step)
                return flow.plan(loaded, environment, each, Overrides(), step)

            plans.append(TargetPlan(each, attempt(one)))
        return plans

    return list(_each(fleet, environment, run))


def plan_exit(run: SpecRun[list[TargetPlan]]) -> int:
    """One spec's exit code in a fleet `plan`: the worst of its own and its targets'."""
    return worst_exit(
        [run.exit_code, *(each.outcome.exit_code for each in run.outcome.value or [])]
    )
