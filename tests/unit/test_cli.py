"""The command line: text and --json output, exit codes, init, schema, explain."""

from __future__ import annotations

import io
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from orchestrator import __version__
from orchestrator.cli.app import render_help
from tests.conftest import EXAMPLE_SPEC, MINIMAL, REPO, CliResult

Run = Callable[..., CliResult]
HELP_FILE = REPO / "orchestrator" / "cli" / "help.txt"
CANARY = "sk-canary-5f2b9d7e41"


def test_fast_help_is_exactly_clicks_help(run_cli: Run) -> None:
    assert HELP_FILE.read_text() == render_help(), (
        "help.txt is stale: python -m orchestrator.cli.app > orchestrator/cli/help.txt"
    )
    result = run_cli("--help")
    assert result.code == 0 and result.out == render_help()


def test_version(run_cli: Run) -> None:
    assert run_cli("--version").out == f"mcp-deploy {__version__}\n"


def test_validate_example_text_and_json(run_cli: Run) -> None:
    text = run_cli("--spec", str(EXAMPLE_SPEC), "validate")
    assert text.code == 0, text.err
    assert (
        "toolbox" in text.out
        and "prod (pulumi, from staging)" in text.out
        and "local (local)" in text.out
    )
    data = run_cli("--spec", str(EXAMPLE_SPEC), "validate", "--json").json()
    assert data["ok"] is True
    assert data["targets"] == ["cloudrun", "lambda"]
    assert [e["name"] for e in data["environments"]] == ["local", "staging", "prod"]


def test_validate_finds_spec_from_cwd(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLE_SPEC.parent / "toolbox")
    assert run_cli("validate").code == 0


def test_invalid_spec_exits_2_with_located_errors(
    run_cli: Run, project: Callable[..., Path]
) -> None:
    path = project(MINIMAL + f'\n[environments.dev]\nsecrets.MCP_AUTH_TOKEN = "{CANARY}"\n')
    result = run_cli("--spec", str(path), "validate")
    assert result.code == 2
    assert f"{path}:8: environments.dev.secrets.MCP_AUTH_TOKEN" in result.err
    assert "Traceback" not in result.err
    assert CANARY not in result.err + result.out
    data = run_cli("--spec", str(path), "validate", "--json").json()
    assert data["ok"] is False
    assert data["errors"][0]["line"] == 8
    assert data["errors"][0]["path"] == "environments.dev.secrets.MCP_AUTH_TOKEN"


def test_validate_unknown_env_suggests(run_cli: Run) -> None:
    result = run_cli("--spec", str(EXAMPLE_SPEC), "validate", "--env", "prd")
    assert result.code == 2
    assert "did you mean 'prod'?" in result.err


def test_usage_error_exits_2(run_cli: Run) -> None:
    assert run_cli("valdate").code == 2
    assert run_cli("config", "explain", "--set", "novalue").code == 2


def test_schema_is_valid_and_accepts_the_example(run_cli: Run) -> None:
    import json

    schema = json.loads(run_cli("schema").out)
    jsonschema.Draft202012Validator.check_schema(schema)
    document = tomllib.loads(EXAMPLE_SPEC.read_text())
    jsonschema.validate(document, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**document, "targets": {"lamda": {}}}, schema)


def test_schema_to_file(run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    assert run_cli("schema", "--output", str(out)).code == 0
    assert '"mcp-deploy spec"' in out.read_text()


def test_explain_json_has_every_layer(run_cli: Run) -> None:
    result = run_cli(
        "--spec",
        str(EXAMPLE_SPEC),
        "config",
        "explain",
        "--env",
        "staging",
        "--target",
        "lambda",
        "--set",
        "timeout=90",
        "--json",
    )
    assert result.code == 0, result.err
    settings = {s["key"]: (s["value"], s["layer"]) for s in result.json()["settings"]}
    assert settings["targets.lambda.timeout"] == (90, "flag")
    assert settings["targets.lambda.memory"] == (1024, "environment")
    assert settings["targets.lambda.region"] == ("eu-west-1", "spec")
    assert settings["targets.lambda.ephemeral_storage"] == (512, "default")
    assert settings["secrets.TOOLBOX_API_KEY"] == ("env:STAGING_TOOLBOX_KEY", "environment")


def test_explain_text_shows_sources_not_values(
    run_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGING_TOOLBOX_KEY", CANARY)
    result = run_cli(
        "--spec", str(EXAMPLE_SPEC), "config", "explain", "--env", "staging", "--target", "cloudrun"
    )
    assert result.code == 0, result.err
    assert "env:STAGING_TOOLBOX_KEY" in result.out
    assert "environment staging" in result.out
    assert CANARY not in result.out


def test_init_scaffolds_a_valid_project_and_never_overwrites(run_cli: Run, tmp_path: Path) -> None:
    target = tmp_path / "My Server"
    created = run_cli("init", str(target), "--json").json()
    assert created["name"] == "my-server"
    spec = target / "mcp-deploy.toml"
    assert (target / "my_server" / "app.py").is_file()
    assert run_cli("--spec", str(spec), "validate").code == 0
    before = spec.read_text()
    again = run_cli("init", str(target))
    assert again.code == 2 and "already exists" in again.err
    assert spec.read_text() == before


def test_init_rejects_undeployable_name(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("init", str(tmp_path / "x"), "--name", "Bad_Name")
    assert result.code == 2 and "--name" in result.err
    assert not (tmp_path / "x").exists()


def test_internal_errors_are_reported_without_traceback(
    run_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("orchestrator.spec.loader.load_spec", explode)
    result = run_cli("--spec", str(EXAMPLE_SPEC), "validate")
    assert result.code == 70
    assert "internal error: RuntimeError: boom" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("args", "expanded"),
    [
        (["--target", "lambda"], ["deploy", "--target", "lambda"]),
        (["--spec", "s.toml", "--env", "ci"], ["--spec", "s.toml", "deploy", "--env", "ci"]),
        (["--spec=s.toml", "--target", "x"], ["--spec=s.toml", "deploy", "--target", "x"]),
        (["deploy", "--target", "lambda"], ["deploy", "--target", "lambda"]),
        (["--help"], ["--help"]),
        (["--version"], ["--version"]),
        (["--spec", "s.toml"], ["--spec", "s.toml"]),
    ],
)
def test_the_deploy_shorthand(args: list[str], expanded: list[str]) -> None:
    from orchestrator.cli.app import expand_shorthand

    assert expand_shorthand(args) == expanded


def test_the_shorthand_reaches_deploy(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    result = run_cli("--spec", str(EXAMPLE_SPEC), "--target", "lambda", "--env", "prod")
    # the Pulumi engine's first check, before anything is built
    assert result.code == 2 and "environments.prod.secrets_provider" in result.err, result.err


def test_environment_kinds(run_cli: Run, project: Callable[..., Path]) -> None:
    spec = project(
        MINIMAL
        + """
[targets.lambda]
[environments.ci]
kind = "local"
secrets.MCP_AUTH_TOKEN = "env:CI_TOKEN"
[environments.preview]
kind = "local"
secrets.MCP_AUTH_TOKEN = "aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"
[environments.staging]
"""
    )
    result = run_cli("--spec", str(spec), "validate")
    assert result.code == 2
    # a local-kind environment reads its secrets here; a cloud one needs its cloud options
    assert "environments.preview.secrets.MCP_AUTH_TOKEN" in result.err
    assert "environment 'preview' is of kind local" in result.err
    assert "'region' is required to deploy to 'lambda' in environment 'staging'" in result.err
    assert "environment 'ci'" not in result.err
    kinds = run_cli("--spec", str(project(MINIMAL + '[environments.ci]\nkind = "local"\n')),
                    "validate", "--json").json()  # fmt: skip
    assert [(e["name"], e["kind"]) for e in kinds["environments"]] == [
        ("local", "local"),
        ("ci", "local"),
    ]


def test_the_default_environment_is_always_local(
    run_cli: Run, project: Callable[..., Path]
) -> None:
    result = run_cli(
        "--spec", str(project(MINIMAL + '[environments.local]\nkind = "pulumi"\n')), "validate"
    )
    assert result.code == 2 and "environments.local.kind" in result.err, result.err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_destroying_a_cloud_environment_asks_at_a_terminal_only(
    run_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_DEPLOY_PULUMI_ROOT", "/nonexistent")
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    declined = run_cli("--spec", str(EXAMPLE_SPEC), "destroy", "--env", "staging")
    assert declined.code == 1 and "nothing was destroyed" in declined.err
    assert "Destroy toolbox in 'staging'" in declined.err
    # --yes (or a pipeline's stdin) goes straight on: here to the missing Pulumi CLI
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "x")
    answered = run_cli("--spec", str(EXAMPLE_SPEC), "destroy", "--env", "staging", "--yes")
    assert answered.code == 2 and "no Pulumi CLI found" in answered.err


def test_init_writes_a_spec_for_an_existing_stdio_server(run_cli: Run, tmp_path: Path) -> None:
    target = tmp_path / "timesrv"
    made = run_cli(
        "init", str(target), "--stdio", "python -m mcp_server_time --local-timezone 'UTC'",
        "--requirement", "mcp-server-time==2026.10.19", "--json",
    )  # fmt: skip
    assert made.code == 0, made.err
    assert sorted(Path(p).name for p in made.json()["files"]) == [
        ".mcpdeployignore", "mcp-deploy.toml", "requirements.txt",
    ]  # fmt: skip
    spec = tomllib.loads((target / "mcp-deploy.toml").read_text())
    assert spec["server"]["transport"] == "stdio"
    assert spec["server"]["command"] == [
        "python", "-m", "mcp_server_time", "--local-timezone", "UTC",
    ]  # fmt: skip
    assert (target / "requirements.txt").read_text() == "mcp-server-time==2026.10.19\n"
    valid = run_cli("--spec", str(target / "mcp-deploy.toml"), "validate")
    assert valid.code == 0, valid.err
    assert "stdio: python -m mcp_server_time" in valid.out
    again = run_cli("init", str(target), "--stdio", "python -m x")
    assert again.code == 2 and "already exists" in again.err
    lone = run_cli("init", str(tmp_path / "x"), "--requirement", "a==1")
    assert lone.code == 2 and "--requirement goes with --stdio" in lone.err
    unclosed = run_cli("init", str(tmp_path / "y"), "--stdio", "python 'unclosed")
    assert unclosed.code == 2 and "cannot split the command" in unclosed.err
