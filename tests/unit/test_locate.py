"""The TOML key-line scanner used for error locations."""

from __future__ import annotations

from orchestrator.spec.locate import key_lines, line_of, split_key

DOC = """\
# comment
[server]
name = "x"   # trailing = comment
"odd.key" = 1

[environments.staging]
config.LEVEL = "debug"
targets . lambda . memory = 1024
url = "a=b"

[[array.table]]
item = 1
"""


def test_split_key() -> None:
    assert split_key('a."b.c".d') == ("a", "b.c", "d")
    assert split_key(" a . b ") == ("a", "b")
    assert split_key("'lit'.x") == ("lit", "x")
    assert split_key('"unterminated') is None
    assert split_key("a..b") is None


def test_lines_of_tables_dotted_and_quoted_keys() -> None:
    lines = key_lines(DOC)
    assert lines[("server",)] == 2
    assert lines[("server", "name")] == 3
    assert lines[("server", "odd.key")] == 4
    assert lines[("environments",)] == 6
    assert lines[("environments", "staging", "config", "LEVEL")] == 7
    assert lines[("environments", "staging", "targets", "lambda", "memory")] == 8
    assert lines[("environments", "staging", "url")] == 9
    assert lines[("array", "table", "item")] == 12


def test_line_of_falls_back_to_the_nearest_written_prefix() -> None:
    lines = key_lines(DOC)
    assert line_of(lines, ("environments", "staging", "targets", "cloudrun", "region")) == 8
    assert line_of(lines, ("environments", "staging", "secrets", "KEY")) == 6
    assert line_of(lines, ("server", "name")) == 3
    assert line_of(lines, ("nowhere",)) is None
