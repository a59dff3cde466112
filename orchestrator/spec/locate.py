"""Find the line a TOML key is written on, for error messages.

`tomllib` does not keep positions, so this is a small line scanner: it follows `[table]` and
`[[array]]` headers and `key = value` lines (dotted and quoted keys included) and records the
first line each key path appears on. It is best effort: unusual layouts (keys inside
multi-line inline tables, for instance) fall back to the nearest enclosing key's line.

`deepest_nesting` finds where arrays and inline tables nest too deeply, before a recursive
parser meets them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

KeyPath = tuple[str, ...]

# Key paths are recorded up to this many parts (a longer one is refused as too deep anyway);
# it keeps the scan linear in the size of the file.
MAX_RECORDED_PARTS = 100

_TOKEN = re.compile(r"""\"\"\"|'''|["'#\[\]{}\n]""")
_STRING_END = {
    '"""': re.compile(r'(?:\\.|[^\\])*?"""', re.S),
    "'''": re.compile(r".*?'''", re.S),
    '"': re.compile(r'(?:\\.|[^\\"\n])*"'),
    "'": re.compile(r"[^'\n]*'"),
}


def deepest_nesting(text: str, limit: int) -> int | None:
    """The line on which arrays and inline tables (`[`, `{`) first nest more than `limit` deep,
    or None. Brackets inside strings and comments do not count; table headers (`[a]`,
    `[[a]]`) open and close on their line. Linear in the length of `text`; never raises."""
    depth, line, position = 0, 1, 0
    while (token := _TOKEN.search(text, position)) is not None:
        kind, position = token.group(), token.end()
        if kind == "\n":
            line += 1
        elif kind == "#":
            end = text.find("\n", position)
            position = len(text) if end < 0 else end
        elif kind in _STRING_END:
            closed = _STRING_END[kind].match(text, position)
            end = closed.end() if closed else len(text)
            line += text.count("\n", position, end)
            position = end
        elif kind in "[{":
            depth += 1
            if depth > limit:
                return line
        else:
            depth = max(depth - 1, 0)
    return None


def split_key(text: str) -> KeyPath | None:
    """Split a TOML key (`a."b.c".d`) into its parts; None when it is not a plain key."""
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    quoted = False
    for char in text.strip():
        if quote:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif char in "\"'":
            quote, quoted = char, True
        elif char == ".":
            parts.append("".join(current).strip())
            current, quoted = [], False
        elif char.isspace() and not quoted:
            continue
        else:
            current.append(char)
    if quote is not None:
        return None
    parts.append("".join(current).strip())
    return tuple(parts) if all(parts) else None


def _key_before_equals(line: str) -> str | None:
    quote: str | None = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "=":
            return line[:index]
    return None


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every key path written in `text` (and each of its prefixes) to its first line."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()

    def record(path: KeyPath, number: int) -> None:
        path = path[:MAX_RECORDED_PARTS]
        for end in range(1, len(path) + 1):
            lines.setdefault(path[:end], number)

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            closing = "]]" if line.startswith("[[") else "]"
            end = line.find(closing)
            header = split_key(line[len(closing) : end]) if end > 0 else None
            if header is not None:
                table = header
                record(table, number)
            continue
        key_text = _key_before_equals(line)
        if key_text is None:
            continue
        key = split_key(key_text)
        if key is not None:
            record(table + key, number)
    return lines


def line_of(lines: dict[KeyPath, int], path: Sequence[str | int]) -> int | None:
    """The line of the longest prefix of `path` that is written in the file."""
    keys = tuple(str(part) for part in path)
    for end in range(len(keys), 0, -1):
        found = lines.get(keys[:end])
        if found is not None:
            return found
    return None
