"""Errors a user can act on.

Every problem with what the user gave us (the spec file, a flag, a name) is an `InputError`:
it carries one or more `Issue`s, each naming where (file, line, dotted key path), what is wrong,
and a hint. The command line prints them and exits with code 2; it never shows a traceback
for these. Messages never echo values from secret positions.

Rendering as text escapes what a terminal would interpret (`printable`): user input echoed in
a message (a key, a path, a file name) never reaches the terminal as raw control characters,
and undecodable bytes of a file name are shown as `\\xNN`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Longest single line of a rendered message; the middle of a longer one is left out.
MAX_LINE = 2000
# Bidirectional marks and overrides: they reorder what a terminal shows ("Trojan Source").
_BIDI = frozenset(map(chr, (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))))


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def printable(text: str, limit: int = MAX_LINE) -> str:
    """`text` safe to write to a terminal: control characters (C0 but tab, DEL, C1),
    bidirectional overrides and lone surrogates become `\\xNN`/`\\uNNNN` escapes, and text
    longer than `limit` loses its middle (marked `…`). Plain text comes back unchanged."""
    if text.isprintable() and len(text) <= limit:
        return text
    out = "".join(
        _escape(char)
        if char != "\t" and (unicodedata.category(char) in ("Cc", "Cs") or char in _BIDI)
        else char
        for char in text
    )
    if len(out) > limit:
        half = limit // 2
        out = out[:half] + "…" + out[-half:]
    return out


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

    def render(self, label: str = "error") -> str:
        """`LABEL: file:line: where: message` and an indented hint line, terminal-safe."""
        location = self.location()
        lines = [printable(f"{label}: {location + ': ' if location else ''}{self.message}")]
        if self.hint:
            lines.append(printable(f"  hint: {self.hint}"))
        return "\n".join(lines)

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
        """Every issue as text (see `Issue.render`)."""
        return "\n".join(issue.render() for issue in self.issues)

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

    # The command line's exit code for this failure (docs/cli.md lists them).
    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail

    def render(self) -> str:
        """The failure as text, each line terminal-safe (see `printable`)."""
        lines = [f"error: {self.message}"]
        if self.detail:
            lines += ["  " + line for line in self.detail.rstrip().splitlines()]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(printable(line) for text in lines for line in text.splitlines())

    def to_dict(self) -> dict[str, Any]:
        return {"ok": False, "error": self.message, "hint": self.hint, "detail": self.detail}


class BusyError(OperationError):
    """The operation could not start because another one holds what it needs (a cloud stack
    locked by another update): nothing was changed, and retrying later may succeed. Exit 75
    (EX_TEMPFAIL)."""

    exit_code = 75


class GateFailed(OperationError):
    """A deployment ran and failed its smoke test (the gate), and was not rolled back: there
    was no previous deployment, rollback was declined (`--no-rollback`: the failed one is
    left running for inspection), or the previous one could not be restored or failed its own
    check. Exit 4."""

    exit_code = 4


class RolledBack(GateFailed):
    """A deployment failed its smoke test and the previous deployment was restored and passed
    its smoke test again. Exit 3."""

    exit_code = 3
