"""Errors a user can act on.

Every problem with what the user gave us (the spec file, a flag, a name) is an `InputError`:
it carries one or more `Issue`s, each naming where (file, line, dotted key path), what is wrong,
and a hint. The command line prints them and exits with code 2; it never shows a traceback
for these. Messages never echo values from secret positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One problem: `where` is a dotted key path (`targets.lambda.memory`) or a flag (`--env`)."""

    where: str
    message: str
    hint: str | None = None
    file: Path | None = None
    line: int | None = None

    def location(self) -> str:
        """`file:line: where`, leaving out what is unknown."""
        parts: list[str] = []
        if self.file is not None:
            parts.append(str(self.file) + (f":{self.line}" if self.line else ""))
        if self.where:
            parts.append(self.where)
        return ": ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.file) if self.file else None,
            "line": self.line,
            "path": self.where,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class InputError(Exception):
    """Bad input from the user. Exit code 2."""

    issues: list[Issue] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        lines: list[str] = []
        for issue in self.issues:
            lines.append(f"error: {issue.location()}: {issue.message}")
            if issue.hint:
                lines.append(f"  hint: {issue.hint}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": False, "errors": [issue.to_dict() for issue in self.issues]}


class SpecError(InputError):
    """The spec file is missing, unreadable, not TOML, or does not validate."""


def input_error(where: str, message: str, hint: str | None = None) -> InputError:
    """Shorthand for a single-issue `InputError` that is not about the spec file."""
    return InputError([Issue(where=where, message=message, hint=hint)])


class OperationError(Exception):
    """An operation ran and failed (a build, a push, a deploy). Exit code 1.

    `message` says what failed in user terms; `hint` says what to do; `detail` carries tool
    output worth showing (never secret values).
    """

    def __init__(self, message: str, hint: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail

    def render(self) -> str:
        lines = [f"error: {self.message}"]
        if self.detail:
            lines += ["  " + line for line in self.detail.rstrip().splitlines()]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": False, "error": self.message, "hint": self.hint, "detail": self.detail}
