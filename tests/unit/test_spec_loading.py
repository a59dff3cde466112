"""Loading a spec: defaults, discovery, pyproject, and errors that name file, line, key, hint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.errors import Issue, SpecError
from orchestrator.spec.loader import find_spec_file, load_spec
from tests.conftest import EXAMPLE_SPEC, MINIMAL


def issues_of(path: Path) -> list[Issue]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return caught.value.issues


def only_issue(path: Path) -> Issue:
    issues = issues_of(path)
    assert len(issues) == 1, [i.location() + " " + i.message for i in issues]
    return issues[0]


def test_minimal_spec_gets_documented_defaults(project: Callable[..., Path]) -> None:
    spec = load_spec(project(MINIMAL)).spec
    assert spec.server.runtime == "python"
    assert spec.server.python == "3.12"
    assert spec.server.path == "/mcp"
    assert spec.server.source == "."
    assert spec.auth.mode == "bearer"
    assert spec.auth.token_secret == "MCP_AUTH_TOKEN"
    assert spec.secrets["MCP_AUTH_TOKEN"].required is True
    assert spec.environment_names() == ["local"]
    assert spec.targets.declared() == {}


def test_example_spec_is_valid() -> None:
    spec = load_spec(EXAMPLE_SPEC).spec
    assert spec.environment_names() == ["local", "staging", "prod"]
    assert spec.environments["prod"].promote_from == "staging"
    assert sorted(spec.targets.declared()) == ["cloudrun", "lambda"]


def test_unknown_key_names_line_and_suggests(project: Callable[..., Path]) -> None:
    path = project(MINIMAL + "\n[targets.lamda]\nmemory = 1024\n")
    issue = only_issue(path)
    assert issue.where == "targets.lamda"
    assert issue.message == "unknown key"
    assert issue.hint == "did you mean 'lambda'?"
    assert issue.file == path
    assert issue.line == 7


def test_misspelt_option_in_environment_is_located(project: Callable[..., Path]) -> None:
    path = project(MINIMAL + "\n[environments.staging]\ntargets.lambda.memroy = 1024\n")
    issue = only_issue(path)
    assert issue.where == "environments.staging.targets.lambda.memroy"
    assert issue.hint == "did you mean 'memory'?"
    assert issue.line == 8


def test_enum_error_lists_allowed_values(project: Callable[..., Path]) -> None:
    issue = only_issue(project(MINIMAL + '\n[targets.lambda]\narch = "amd64"\n'))
    assert issue.where == "targets.lambda.arch"
    assert "'arm64'" in issue.message and "'x86_64'" in issue.message


def test_unquoted_python_version_gets_a_quoting_hint(project: Callable[..., Path]) -> None:
    path = project(MINIMAL.replace('name = "demo"', 'name = "demo"\npython = 3.12'))
    issue = only_issue(path)
    assert issue.where == "server.python"
    assert issue.hint is not None and '"3.12"' in issue.hint


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Demo", "DNS-safe"),
        ("demo-", "DNS-safe"),
        ("1demo", "DNS-safe"),
        ("d" * 33, "at most 32"),
    ],
)
def test_server_name_rules(project: Callable[..., Path], name: str, fragment: str) -> None:
    issue = only_issue(project(MINIMAL.replace('"demo"', f'"{name}"', 1)))
    assert issue.where == "server.name"
    assert fragment in issue.message


def test_missing_required_key(project: Callable[..., Path]) -> None:
    issue = only_issue(project('[server]\nname = "demo"\n[secrets.MCP_AUTH_TOKEN]\n'))
    assert issue.where == "server.entry"
    assert issue.message == "missing required key"
    assert issue.hint and "weather.app:app" in issue.hint


def test_reserved_and_invalid_config_names(project: Callable[..., Path]) -> None:
    issues = issues_of(project(MINIMAL + '\n[config]\nAWS_REGION = "x"\n"bad-name" = "y"\n'))
    assert [i.where for i in issues] == ["config.AWS_REGION", "config.bad-name"]
    assert "reserved" in issues[0].message


def test_config_values_become_strings(project: Callable[..., Path]) -> None:
    spec = load_spec(project(MINIMAL + "\n[config]\nA = 1\nB = true\nC = 1.5\n")).spec
    assert dict(spec.config) == {"A": "1", "B": "true", "C": "1.5"}


def test_config_value_must_be_scalar(project: Callable[..., Path]) -> None:
    issue = only_issue(project(MINIMAL + "\n[config]\nA = [1, 2]\n"))
    assert issue.where == "config.A"


def test_cloudrun_base_must_be_pinned_by_digest(project: Callable[..., Path]) -> None:
    issue = only_issue(project(MINIMAL + '\n[targets.cloudrun]\nbase = "python:3.12-slim"\n'))
    assert issue.where == "targets.cloudrun.base"
    assert issue.hint and "sha256" in issue.hint


def test_cross_option_rule_reported_on_table(project: Callable[..., Path]) -> None:
    issue = only_issue(
        project(MINIMAL + "\n[targets.cloudrun]\nmin_instances = 5\nmax_instances = 2\n")
    )
    assert issue.where == "targets.cloudrun"
    assert "min_instances" in issue.message


def test_toml_syntax_error_has_line(project: Callable[..., Path]) -> None:
    issue = only_issue(project('[server]\nname = "demo\n'))
    assert issue.message.startswith("not valid TOML")
    assert issue.line == 2


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "mcp-deploy.toml"
    path.write_bytes(b"\xff\xfe[server]")
    assert only_issue(path).message == "is not UTF-8 text"


def test_missing_file_and_discovery_failure(tmp_path: Path) -> None:
    assert only_issue(tmp_path / "nope.toml").message == "file not found"
    with pytest.raises(SpecError) as caught:
        find_spec_file(tmp_path)
    assert "mcp-deploy init" in (caught.value.issues[0].hint or "")


def test_discovery_walks_up_and_prefers_mcp_deploy_toml(
    project: Callable[..., Path], tmp_path: Path
) -> None:
    spec = project(MINIMAL)
    project('[tool.mcp-deploy.server]\nname = "other"\n', name="pyproject.toml")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_spec_file(nested) == spec
    assert load_spec(start=nested).spec.server.name == "demo"


def test_pyproject_table_with_prefixed_paths(project: Callable[..., Path]) -> None:
    body = MINIMAL.replace("[server]", "[tool.mcp-deploy.server]").replace(
        "[secrets.", "[tool.mcp-deploy.secrets."
    )
    path = project('[project]\nname = "demo"\n\n' + body, name="pyproject.toml")
    assert load_spec(path).spec.server.name == "demo"
    bad = project(body + '\n[tool.mcp-deploy.auth]\nmode = "basic"\n', name="pyproject.toml")
    issue = only_issue(bad)
    assert issue.where == "tool.mcp-deploy.auth.mode"
    assert issue.line == 8


def test_pyproject_without_table(project: Callable[..., Path]) -> None:
    issue = only_issue(project('[project]\nname = "x"\n', name="pyproject.toml"))
    assert issue.where == "tool.mcp-deploy"


def test_entry_module_must_exist(project: Callable[..., Path]) -> None:
    issue = only_issue(project(MINIMAL.replace("demo.app:app", "demo.missing:app")))
    assert issue.where == "server.entry"
    assert "demo/missing.py" in (issue.hint or "")


def test_source_directory_must_exist(project: Callable[..., Path]) -> None:
    issue = only_issue(project(MINIMAL.replace("entry =", 'source = "src"\nentry =')))
    assert issue.where == "server.source"


def test_all_problems_reported_in_file_order(project: Callable[..., Path]) -> None:
    issues = issues_of(
        project(MINIMAL + '\n[targets.lambda]\nmemory = 1\narch = "x"\n[smoke]\ntol = "a"\n')
    )
    assert [i.where for i in issues] == [
        "targets.lambda.memory",
        "targets.lambda.arch",
        "smoke.tol",
    ]
    assert [i.line for i in issues] == sorted(i.line or 0 for i in issues)
