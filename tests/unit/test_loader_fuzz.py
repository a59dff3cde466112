"""Property: whatever document the loader is given, only `SpecError` comes out (or a spec).

Two sources of input: random TOML documents built from the spec's own vocabulary mixed with
random keys and values, and random mutations of the example spec (keys deleted, renamed,
values replaced, tables inserted). Raw random text covers the parser's error path.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import SpecError
from orchestrator.spec.loader import load_spec
from tests.conftest import EXAMPLE_SPEC

VOCABULARY = [
    "server",
    "name",
    "runtime",
    "python",
    "entry",
    "source",
    "path",
    "health_path",
    "include",
    "exclude",
    "ignore_file",
    "config",
    "secrets",
    "description",
    "required",
    "source",
    "auth",
    "mode",
    "token_secret",
    "targets",
    "lambda",
    "cloudrun",
    "workers",
    "memory",
    "timeout",
    "arch",
    "region",
    "project",
    "registry",
    "base",
    "platforms",
    "min_instances",
    "max_instances",
    "account_id",
    "compatibility_date",
    "compatibility_flags",
    "environments",
    "local",
    "staging",
    "prod",
    "promote_from",
    "smoke",
    "tool",
    "arguments",
    "expect",
    "MCP_AUTH_TOKEN",
    "TOOLBOX_API_KEY",
    "GREETING",
]
WORDS = [
    "toolbox",
    "toolbox.app:app",
    "python",
    "3.12",
    "/mcp",
    "bearer",
    "iam",
    "none",
    "arm64",
    "env:X",
    "file:k",
    "gcp-sm://projects/p/secrets/s/versions/1",
    "staging",
    "local",
    "",
    "linux/amd64",
    "eu-west-1",
    "python_workers",
]

keys = st.one_of(st.sampled_from(VOCABULARY), st.text(min_size=1, max_size=12))
scalars = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(dt.UTC)),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)
documents = st.dictionaries(keys, values, max_size=8)

EXAMPLE = tomllib.loads(EXAMPLE_SPEC.read_text())


def check(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mcp-deploy.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_spec(path)
    except SpecError as error:
        assert error.issues, "a SpecError must carry at least one issue"
        assert error.render()


def dump(document: dict[str, Any]) -> str | None:
    try:
        return tomli_w.dumps(document)
    except (TypeError, ValueError):
        return None


common = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@common
@given(document=documents)
def test_random_documents(tmp_path: Path, document: dict[str, Any]) -> None:
    text = dump(document)
    if text is not None:
        check(tmp_path, text)


@common
@given(text=st.text(max_size=200))
def test_random_text(tmp_path: Path, text: str) -> None:
    check(tmp_path, text)


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    return found


def _mutate(
    document: dict[str, Any], path: tuple[str, ...], action: str, value: Any, key: str
) -> None:
    parent: Any = document
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = value
    elif action == "rename":
        parent[key] = parent.pop(last)
    elif action == "insert" and isinstance(parent[last], dict):
        parent[last][key] = value


@common
@given(
    data=st.data(),
    steps=st.integers(min_value=1, max_value=4),
)
def test_mutations_of_the_example(tmp_path: Path, data: st.DataObject, steps: int) -> None:
    import copy

    document = copy.deepcopy(EXAMPLE)
    for _ in range(steps):
        paths = _paths(document)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        action = data.draw(st.sampled_from(["delete", "replace", "rename", "insert"]))
        _mutate(document, path, action, data.draw(values), data.draw(keys))
    text = dump(document)
    if text is not None:
        (tmp_path / "toolbox").mkdir(exist_ok=True)
        (tmp_path / "toolbox" / "__init__.py").touch()
        (tmp_path / "toolbox" / "app.py").touch()
        check(tmp_path, text)
