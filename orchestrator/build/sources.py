"""Which of the server's files go into an artifact.

Selection: files under `server.source` matching `server.include`, minus `server.exclude`, minus
the patterns of `server.ignore_file` (gitignore syntax), minus the built-in excludes that keep
secrets, VCS data, virtualenvs and caches out of every artifact, minus the spec itself (it holds
per-environment config, which never goes into an artifact) and the lock file next to it (it
records how the artifact was built; inside it, every refresh would change the artifact), minus
`keep_out`: the files the spec names as `file:` secret sources, whatever the patterns say.

Nothing is left out silently: an invalid pattern, an ignore file that is not a regular UTF-8
file of at most 1 MiB, a file name that is not UTF-8, a link to a file or to a directory
outside the source directory (its files would be missing from the artifact), a FIFO or device,
a directory that cannot be read, or more than `MAX_FILES` files left after the excludes, is an
`InputError` naming the file or key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import pathspec

from orchestrator.errors import InputError, Issue
from orchestrator.files import UnreadableFile, os_reason, read_regular_file, size_text
from orchestrator.spec.issues import format_path
from orchestrator.spec.model import DEFAULT_EXCLUDES
from orchestrator.spec.server import ServerSection

ALWAYS_EXCLUDED = (*DEFAULT_EXCLUDES, "*.pyc", "mcp-deploy.toml", "mcp-deploy.lock")
MAX_IGNORE_BYTES = 1 << 20
MAX_REPORTED = 20
# More files than any server needs: beyond it, server.source is the wrong directory ("/").
MAX_FILES = 100_000
_HINT = "check its [ranges] and escapes (a trailing backslash escapes nothing)"

Loc = tuple[str | int, ...]
IssueFactory = Callable[[Loc, str, str | None], Issue]


def _plain_issue(loc: Loc, message: str, hint: str | None) -> Issue:
    return Issue(where=format_path(loc), message=message, hint=hint)


def _compile(lines: Sequence[str]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _bad_patterns(lines: Sequence[str]) -> set[int]:
    """Indexes of the lines that are not valid gitignore patterns."""
    try:
        _compile(lines)
        return set()
    except (ValueError, re.error):
        pass
    bad: set[int] = set()
    for index, line in enumerate(lines):
        try:
            _compile([line])
        except (ValueError, re.error):
            bad.add(index)
    return bad


class _Selection:
    """Collects the problems found while selecting (see `select_sources`)."""

    def __init__(self, source_dir: Path, server: ServerSection, make: IssueFactory) -> None:
        self.source_dir, self.server, self.make = source_dir, server, make
        self.problems: list[Issue] = []

    def patterns(self, key: str, lines: Sequence[str]) -> list[str]:
        """The valid lines of `server.<key>`; each invalid one is a problem."""
        bad = _bad_patterns(lines)
        for index in sorted(bad):
            self.problems.append(
                self.make(
                    ("server", key, index),
                    f"'{lines[index]}' is not a valid gitignore-style pattern",
                    _HINT,
                )
            )
        return [line for index, line in enumerate(lines) if index not in bad]

    def ignore_lines(self) -> list[str]:
        """The valid lines of the ignore file (none when it does not exist)."""
        path = self.source_dir / self.server.ignore_file
        if not os.path.lexists(path):
            return []
        try:
            text = read_regular_file(path, MAX_IGNORE_BYTES).decode("utf-8")
        except (UnreadableFile, UnicodeDecodeError) as error:
            reason = error.reason if isinstance(error, UnreadableFile) else "is not UTF-8 text"
            self.problems.append(
                self.make(
                    ("server", "ignore_file"),
                    f"{path} cannot be read: {reason}",
                    f"an ignore file is a UTF-8 text file of at most {size_text(MAX_IGNORE_BYTES)}",
                )
            )
            return []
        lines = text.splitlines()
        bad = _bad_patterns(lines)
        for index in sorted(bad):
            self.problems.append(
                Issue(
                    where="",
                    message=f"'{lines[index]}' is not a valid gitignore-style pattern",
                    hint=_HINT,
                    file=path,
                    line=index + 1,
                )
            )
        return [line for index, line in enumerate(lines) if index not in bad]

    def add(self, relative: str, message: str, hint: str) -> None:
        self.problems.append(self.make(("server", "source"), f"'{relative}' {message}", hint))

    def raise_problems(self) -> None:
        if not self.problems:
            return
        shown = self.problems[:MAX_REPORTED]
        if len(self.problems) > MAX_REPORTED:
            more = len(self.problems) - MAX_REPORTED
            shown.append(self.make(("server", "source"), f"... and {more} more problems", None))
        raise InputError(shown)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def select_sources(
    source_dir: Path,
    server: ServerSection,
    *,
    keep_out: Collection[Path] = (),
    issue: IssueFactory | None = None,
) -> dict[str, Path]:
    """Map archive-relative POSIX path → file on disk, for every selected file, sorted.

    `keep_out`: resolved paths never selected (the spec's `file:` secret sources).
    `issue`: makes an `Issue` at a spec key path (`LoadedSpec.issue`, for file and line).
    Raises `InputError` listing every problem (see the module docstring). Links to files or
    directories inside the source directory are allowed; a linked directory is not walked
    (its files are selected under their real path)."""
    selection = _Selection(source_dir, server, issue or _plain_issue)
    include = _compile(selection.patterns("include", server.include))
    # The built-in excludes are matched on their own: a negation ("!.env") in server.exclude
    # or the ignore file cannot bring a secret file back.
    always = _compile(ALWAYS_EXCLUDED)
    exclude = _compile([*selection.patterns("exclude", server.exclude), *selection.ignore_lines()])
    ignore_name = server.ignore_file

    def excluded(relative: str) -> bool:
        name = relative.rstrip("/").rsplit("/", 1)[-1]
        return (
            always.match_file(relative)
            or exclude.match_file(relative)
            or relative == ignore_name
            or ("/" not in ignore_name and name == ignore_name)
        )

    root = Path(os.path.realpath(source_dir))
    selected: dict[str, Path] = {}
    seen = 0

    def unreadable(error: OSError) -> None:
        where = Path(error.filename or root)
        relative = where.relative_to(root).as_posix() if where.is_relative_to(root) else where
        selection.add(str(relative), f"cannot be read: {os_reason(error)}", "fix its permissions")

    for directory, subdirectories, files in os.walk(root, onerror=unreadable):
        base = Path(directory).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        walked: list[str] = []
        # Prune excluded directories (".venv/", ".git/", ...) instead of walking into them.
        for name in sorted(subdirectories):
            path = Path(directory) / name
            if excluded(prefix + name + "/"):
                continue
            if not path.is_symlink():
                walked.append(name)
                continue
            target = Path(os.path.realpath(path))
            if not target.is_relative_to(root):
                selection.add(
                    prefix + name,
                    f"is a link to the directory {target}, outside the source directory: its "
                    "files would be missing from the artifact",
                    "copy the package into the source directory, or vendor it as a dependency "
                    "(requirements.txt); or leave the link out with server.exclude",
                )
        subdirectories[:] = walked
        seen += len(files)
        if seen > MAX_FILES:
            raise InputError(
                [
                    selection.make(
                        ("server", "source"),
                        f"{root} holds more than {MAX_FILES} files: is it the server's directory?",
                        "point server.source at the directory holding the server's code, or "
                        "leave the rest out with server.exclude or the ignore file",
                    )
                ]
            )
        for name in sorted(files):
            relative = prefix + name
            if not include.match_file(relative) or excluded(relative):
                continue
            if not _is_utf8(relative):
                selection.add(
                    relative,
                    "has a name that is not valid UTF-8",
                    "rename it, or leave it out with server.exclude",
                )
                continue
            path = Path(directory) / name
            resolved = Path(os.path.realpath(path))
            if resolved in keep_out:
                continue
            if path.is_symlink() and (not resolved.is_relative_to(root) or not resolved.is_file()):
                selection.add(
                    relative,
                    f"is a link to {resolved}, not a file inside the source directory",
                    "copy the file in, or leave it out with server.exclude",
                )
            elif not resolved.is_file():
                selection.add(
                    relative,
                    "is not a regular file (a FIFO, socket or device)",
                    "leave it out with server.exclude",
                )
            else:
                selected[relative] = resolved
    selection.raise_problems()
    return dict(sorted(selected.items()))
