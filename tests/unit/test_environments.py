"""Layering (defaults ← spec ← environment ← flags), provenance, and per-environment checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.environments import Overrides, resolve
from orchestrator.errors import InputError, SpecError
from orchestrator.secret_refs import SecretRef
from orchestrator.spec.loader import load_spec
from tests.conftest import EXAMPLE_SPEC, MINIMAL

LAYERED = (
    MINIMAL
    + """
[secrets.API_KEY]
source = "file:api.key"

[config]
LEVEL = "info"
COLOR = "blue"

[targets.lambda]
region = "eu-west-1"
memory = 256

[environments.staging]
config.LEVEL = "debug"
secrets.API_KEY = "env:STAGING_KEY"
targets.lambda.timeout = 60
"""
)


def layers(resolved: object) -> dict[str, tuple[object, str]]:
    return {s.key: (s.value, s.layer) for s in resolved.settings}  # type: ignore[attr-defined]


def test_each_value_reports_its_layer(project: Callable[..., Path]) -> None:
    loaded = load_spec(project(LAYERED))
    resolved = resolve(
        loaded, "staging", "lambda", Overrides.from_flags([("COLOR", "red")], [("memory", "2048")])
    )
    found = layers(resolved)
    assert found["targets.lambda.arch"] == ("arm64", "default")
    assert found["targets.lambda.region"] == ("eu-west-1", "spec")
    assert found["targets.lambda.timeout"] == (60, "environment")
    assert found["targets.lambda.memory"] == (2048, "flag")
    assert found["config.LEVEL"] == ("debug", "environment")
    assert found["config.COLOR"] == ("red", "flag")
    assert found["secrets.API_KEY"] == ("env:STAGING_KEY", "environment")
    assert found["secrets.MCP_AUTH_TOKEN"] == ("env:MCP_AUTH_TOKEN", "default")
    assert resolved.options.memory == 2048  # type: ignore[attr-defined]
    assert resolved.config == {"LEVEL": "debug", "COLOR": "red"}


def test_local_is_default_and_uses_spec_level_sources(project: Callable[..., Path]) -> None:
    resolved = resolve(load_spec(project(LAYERED)))
    assert resolved.environment == "local"
    assert resolved.target == "lambda"
    assert resolved.secrets["API_KEY"] == SecretRef("file", "api.key")
    assert layers(resolved)["targets.lambda.timeout"] == (30, "default")


def test_unknown_environment_and_target_suggest(project: Callable[..., Path]) -> None:
    loaded = load_spec(project(LAYERED))
    with pytest.raises(InputError) as caught:
        resolve(loaded, "stagign", "lambda")
    assert caught.value.issues[0].hint == "did you mean 'staging'?"
    with pytest.raises(InputError) as caught:
        resolve(loaded, "staging", "lamdba")
    assert caught.value.issues[0].hint == "did you mean 'lambda'?"


def test_target_required_when_several_declared() -> None:
    with pytest.raises(InputError) as caught:
        resolve(load_spec(EXAMPLE_SPEC), "staging")
    assert caught.value.issues[0].where == "--target"


def test_flag_errors_name_the_flag(project: Callable[..., Path]) -> None:
    loaded = load_spec(project(LAYERED))
    with pytest.raises(InputError) as caught:
        resolve(loaded, "local", "lambda", Overrides.from_flags(options=[("memroy", "1")]))
    assert caught.value.issues[0].where == "--set memroy"
    assert caught.value.issues[0].hint == "did you mean 'memory'?"
    with pytest.raises(InputError) as caught:
        resolve(loaded, "local", "lambda", Overrides.from_flags(options=[("memory", "64")]))
    assert caught.value.issues[0].where == "--set memory"
    with pytest.raises(InputError) as caught:
        Overrides.from_flags(config=[("AWS_REGION", "x")])
    assert caught.value.issues[0].where == "--config AWS_REGION"
    with pytest.raises(InputError) as caught:
        resolve(loaded, "local", "lambda", Overrides.from_flags(config=[("API_KEY", "x")]))
    assert "declared secret" in caught.value.issues[0].message


def test_cloud_fields_required_outside_local(project: Callable[..., Path]) -> None:
    text = MINIMAL + "\n[targets.cloudrun]\n\n[environments.dev]\n"
    with pytest.raises(SpecError) as caught:
        load_spec(project(text))
    wheres = sorted(i.where for i in caught.value.issues)
    assert wheres == [
        "environments.dev.targets.cloudrun.project",
        "environments.dev.targets.cloudrun.region",
        "environments.dev.targets.cloudrun.registry",
    ]
    assert all(i.line == 9 for i in caught.value.issues)  # the [environments.dev] header


def test_invalid_override_blamed_on_environment(project: Callable[..., Path]) -> None:
    text = (
        LAYERED + "\n[environments.prod]\ntargets.lambda.reserved_concurrency = 1\n"
        "targets.lambda.provisioned_concurrency = 5\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(project(text))
    (issue,) = caught.value.issues
    assert issue.where == "environments.prod.targets.lambda"
    assert "in environment 'prod'" in issue.message


@pytest.mark.parametrize(
    ("extra", "where", "fragment"),
    [
        (
            '\n[environments.dev]\nsecrets.API_KY = "env:X"\n',
            "environments.dev.secrets.API_KY",
            "did you mean 'API_KEY'?",
        ),
        (
            '\n[environments.staging]\n[environments.dev]\npromote_from = "stagin"\n',
            "environments.dev.promote_from",
            "did you mean 'staging'?",
        ),
        ('\n[environments.dev]\npromote_from = "dev"\n', "environments.dev.promote_from", "itself"),
        (
            '\n[environments.dev]\npromote_from = "staging"\n[environments.staging]\n'
            'promote_from = "dev"\n',
            "environments.dev.promote_from",
            "cycle",
        ),
        (
            '\n[environments.local]\npromote_from = "dev"\n[environments.dev]\n',
            "environments.local.promote_from",
            "built from source",
        ),
        (
            '\n[environments.local]\nsecrets.API_KEY = "gcp-sm://projects/p1/secrets/s/versions/1"\n',
            "environments.local.secrets.API_KEY",
            "needs a cloud",
        ),
        ('\n[config]\nAPI_KEY = "x"\n', "config.API_KEY", "declared secret"),
        ('\n[smoke]\nexpect = "x"\n', "smoke.expect", "needs smoke.tool"),
        ('\n[auth]\ntoken_secret = "TOKEN"\n', "auth.token_secret", "not declared"),
        ('\n[auth]\nmode = "iam"\n[targets.workers]\n', "auth.mode", "no IAM"),
        (
            "\n[secrets.MCP_AUTH_TOKEN2]\n[secrets.X]\nrequired = false\n[auth]\n"
            'token_secret = "X"\n',
            "secrets.X.required",
            "must be required",
        ),
    ],
)
def test_cross_checks(project: Callable[..., Path], extra: str, where: str, fragment: str) -> None:
    base = MINIMAL + "\n[secrets.API_KEY]\n"
    with pytest.raises(SpecError) as caught:
        load_spec(project(base + extra))
    matching = [i for i in caught.value.issues if i.where == where]
    assert matching, [i.where for i in caught.value.issues]
    assert fragment in matching[0].message + (matching[0].hint or "")


def test_auth_none_needs_no_token(project: Callable[..., Path]) -> None:
    text = '[server]\nname = "demo"\nentry = "demo.app:app"\n[auth]\nmode = "none"\n'
    assert load_spec(project(text)).spec.auth.mode == "none"


def test_example_environments_resolve_on_every_target() -> None:
    loaded = load_spec(EXAMPLE_SPEC)
    prod = resolve(loaded, "prod", "lambda")
    assert prod.promote_from == "staging"
    assert prod.secrets["TOOLBOX_API_KEY"].scheme == "aws-sm"
    assert layers(prod)["targets.lambda.provisioned_concurrency"] == (2, "environment")
    assert resolve(loaded, "staging", "cloudrun").options.max_instances == 3  # type: ignore[attr-defined]
