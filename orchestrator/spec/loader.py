"""Find, read and validate a spec file.

A spec lives in `mcp-deploy.toml`, or in the `[tool.mcp-deploy]` table of `pyproject.toml`.
Without an explicit path the loader looks in the start directory and then its parents, like
git or ruff, and takes the first directory that has either (`mcp-deploy.toml` wins).

Contract: `load_spec` returns a `LoadedSpec` or raises `SpecError`; no other exception escapes
for any file content. A spec must be a regular file of at most `MAX_SPEC_BYTES` (1 MiB) whose
arrays and tables nest at most `MAX_DEPTH` (64) levels deep; a FIFO or device is refused
without being read (`orchestrator.files.read_regular_file`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.errors import Issue, SpecError
from orchestrator.files import UnreadableFile, read_regular_file, size_text
from orchestrator.spec.issues import format_path, issues_from_validation
from orchestrator.spec.locate import KeyPath, deepest_nesting, key_lines, line_of
from orchestrator.spec.model import ServerSpec, spec_model

SPEC_FILE = "mcp-deploy.toml"
PYPROJECT = "pyproject.toml"
PYPROJECT_TABLE: KeyPath = ("tool", "mcp-deploy")

MAX_SPEC_BYTES = 1 << 20
MAX_DEPTH = 64

_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and where it came from, able to point at its own lines."""

    spec: ServerSpec
    path: Path
    key_prefix: KeyPath
    lines: dict[KeyPath, int]

    @property
    def root(self) -> Path:
        """Directory relative paths in the spec are resolved against."""
        return self.path.parent

    def issue(self, loc: Sequence[str | int], message: str, hint: str | None = None) -> Issue:
        """An `Issue` at spec key path `loc`, with file and line filled in."""
        return make_issue(self.path, self.key_prefix, self.lines, tuple(loc), message, hint)


def make_issue(
    path: Path,
    prefix: KeyPath,
    lines: dict[KeyPath, int],
    loc: tuple[str | int, ...],
    message: str,
    hint: str | None,
) -> Issue:
    full = (*prefix, *loc)
    return Issue(
        where=format_path(full), message=message, hint=hint, file=path, line=line_of(lines, full)
    )


def find_spec_file(start: Path | None = None) -> Path:
    """The nearest `mcp-deploy.toml`, or `pyproject.toml` with `[tool.mcp-deploy]`, upwards
    from `start` (default: the current directory)."""
    try:
        start = (start or Path.cwd()).resolve()
    except FileNotFoundError:
        raise SpecError(
            [
                Issue(
                    where="",
                    message="the current directory no longer exists",
                    hint="cd into the project again, or pass --spec PATH",
                )
            ]
        ) from None
    for directory in (start, *start.parents):
        candidate = directory / SPEC_FILE
        if candidate.is_file():
            return candidate
        pyproject = directory / PYPROJECT
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
    raise SpecError(
        [
            Issue(
                where="",
                message=f"no {SPEC_FILE} (or [tool.mcp-deploy] in {PYPROJECT}) found in "
                f"{start} or any parent directory",
                hint="run 'mcp-deploy init' to create one, or pass --spec PATH",
            )
        ]
    )


def _has_tool_table(pyproject: Path) -> bool:
    try:
        text = read_regular_file(pyproject, MAX_SPEC_BYTES).decode("utf-8")
        if deepest_nesting(text, MAX_DEPTH) is not None:
            return False
        data = tomllib.loads(text)
    except (UnreadableFile, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return False
    tool = data.get("tool")
    return isinstance(tool, dict) and PYPROJECT_TABLE[1] in tool


def _read(path: Path) -> str:
    try:
        data = read_regular_file(path, MAX_SPEC_BYTES)
    except UnreadableFile as problem:
        hints = {
            "does not exist": "check the --spec path",
            "is a directory, not a file": f"name the {SPEC_FILE} inside it",
        }
        hint = hints.get(problem.reason)
        if problem.reason.startswith("is larger"):
            hint = f"a spec is at most {size_text(MAX_SPEC_BYTES)}: is this the right file?"
        elif hint is None and problem.reason.startswith("is a"):
            hint = "a spec must be a regular file"
        message = (
            "file not found"
            if problem.reason == "does not exist"
            else f"cannot be read: {problem.reason}"
        )
        raise SpecError([Issue(where="", message=message, file=path, hint=hint)]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(
            [Issue(where="", message="is not UTF-8 text", file=path, hint="save it as UTF-8")]
        ) from None


def _too_deep(path: Path, line: int | None) -> SpecError:
    return SpecError(
        [
            Issue(
                where="",
                message=f"arrays and tables nest more than {MAX_DEPTH} levels deep",
                file=path,
                line=line,
                hint="a spec needs a handful of levels; flatten the value",
            )
        ]
    )


def _parse(path: Path, text: str) -> dict[str, Any]:
    line = deepest_nesting(text, MAX_DEPTH)
    if line is not None:
        raise _too_deep(path, line)
    try:
        return tomllib.loads(text)
    except RecursionError:  # the scan above should make this unreachable
        raise _too_deep(path, None) from None
    except tomllib.TOMLDecodeError as exc:
        reason = str(exc)
        position = _TOML_POSITION.search(reason)
        line = int(position.group(1)) if position else None
        reason = _TOML_POSITION.sub("", reason).strip()
        raise SpecError(
            [
                Issue(
                    where="",
                    message=f"not valid TOML: {reason}",
                    file=path,
                    line=line,
                    hint="see https://toml.io for the syntax",
                )
            ]
        ) from None


def _deep_key(document: dict[str, Any], limit: int) -> tuple[str | int, ...] | None:
    """The key path of a value nested more than `limit` levels deep (dotted keys such as
    `a.b.c...` nest without brackets), found without recursion; None when there is none."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while stack:
        loc, node = stack.pop()
        if len(loc) > limit:
            return loc
        if isinstance(node, dict):
            stack.extend(((*loc, key), child) for key, child in node.items())
        elif isinstance(node, list):
            stack.extend(((*loc, index), child) for index, child in enumerate(node))
    return None


def _select_table(path: Path, document: dict[str, Any]) -> tuple[KeyPath, dict[str, Any]]:
    if path.name != PYPROJECT:
        return (), document
    table: Any = document
    for key in PYPROJECT_TABLE:
        table = table.get(key) if isinstance(table, dict) else None
    if not isinstance(table, dict):
        raise SpecError(
            [
                Issue(
                    where=format_path(PYPROJECT_TABLE),
                    message="table not found",
                    file=path,
                    hint=f"add a [tool.mcp-deploy] table, or use a separate {SPEC_FILE}",
                )
            ]
        )
    return PYPROJECT_TABLE, table


def load_spec(path: Path | None = None, *, start: Path | None = None) -> LoadedSpec:
    """Load and fully check the spec at `path` (or the nearest one above `start`/cwd).

    Raises `SpecError` listing every problem found; the cross-checks (references between
    tables, per-environment effective options, files on disk) run only once the file's
    shape is valid.
    """
    from orchestrator.spec.checks import check_spec

    spec_path = path if path is not None else find_spec_file(start)
    text = _read(spec_path)
    document = _parse(spec_path, text)
    lines = key_lines(text)
    deep = _deep_key(document, MAX_DEPTH)
    if deep is not None:
        shown = format_path(deep[:8]) + ".…"
        error = _too_deep(spec_path, line_of(lines, deep))
        raise SpecError([replace(error.issues[0], where=shown)])
    prefix, table = _select_table(spec_path, document)
    model = spec_model()
    try:
        spec = model.model_validate(table)
    except ValidationError as exc:

        def factory(loc: tuple[str | int, ...], message: str, hint: str | None) -> Issue:
            return make_issue(spec_path, prefix, lines, loc, message, hint)

        raise SpecError(_in_file_order(issues_from_validation(exc, model, factory))) from None
    loaded = LoadedSpec(spec=spec, path=spec_path, key_prefix=prefix, lines=lines)
    problems = check_spec(loaded)
    if problems:
        raise SpecError(_in_file_order(problems))
    return loaded


def _in_file_order(issues: list[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda issue: issue.line if issue.line is not None else 1 << 30)
