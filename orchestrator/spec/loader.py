"""Find, read and validate a spec file.

A spec lives in `mcp-deploy.toml`, or in the `[tool.mcp-deploy]` table of `pyproject.toml`.
Without an explicit path the loader looks in the start directory and then its parents, like
git or ruff, and takes the first directory that has either (`mcp-deploy.toml` wins).

Contract: `load_spec` returns a `LoadedSpec` or raises `SpecError`; no other exception escapes
for any file content.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.errors import Issue, SpecError
from orchestrator.spec.issues import format_path, issues_from_validation
from orchestrator.spec.locate import KeyPath, key_lines, line_of
from orchestrator.spec.model import ServerSpec, spec_model

SPEC_FILE = "mcp-deploy.toml"
PYPROJECT = "pyproject.toml"
PYPROJECT_TABLE: KeyPath = ("tool", "mcp-deploy")

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


def find_spec_file(start: Path) -> Path:
    """The nearest `mcp-deploy.toml`, or `pyproject.toml` with `[tool.mcp-deploy]`, upwards."""
    start = start.resolve()
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
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    tool = data.get("tool")
    return isinstance(tool, dict) and PYPROJECT_TABLE[1] in tool


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            [Issue(where="", message="file not found", file=path, hint="check the --spec path")]
        ) from None
    except IsADirectoryError:
        raise SpecError(
            [Issue(where="", message=f"is a directory; expected {SPEC_FILE}", file=path)]
        ) from None
    except UnicodeDecodeError:
        raise SpecError(
            [Issue(where="", message="is not UTF-8 text", file=path, hint="save it as UTF-8")]
        ) from None
    except OSError as exc:
        raise SpecError(
            [Issue(where="", message=f"cannot be read: {exc.strerror}", file=path)]
        ) from None


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
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

    spec_path = path if path is not None else find_spec_file(start or Path.cwd())
    text = _read(spec_path)
    prefix, table = _select_table(spec_path, _parse(spec_path, text))
    lines = key_lines(text)
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
