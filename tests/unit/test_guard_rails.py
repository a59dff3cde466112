"""Guard rails before any cloud call: what `validate` (and so every plan and deploy) refuses or
warns about, and the warnings the deploy flow shows for one environment and target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.deploy.guards import cloud_warnings
from orchestrator.environments import resolve
from orchestrator.errors import Issue, SpecError
from orchestrator.spec.checks import spec_warnings
from orchestrator.spec.loader import load_spec
from targets.cloudrun import CloudRunOptions
from targets.workers import WorkersOptions
from tests.conftest import EXAMPLE_SPEC, MINIMAL, CliResult

Project = Callable[..., Path]
Run = Callable[..., CliResult]

SERVER = '[server]\nname = "demo"\nentry = "demo.app:app"\n'
CLOUDRUN = (
    '[targets.cloudrun]\nproject = "acme-mcp"\nregion = "europe-west1"\n'
    'registry = "europe-west1-docker.pkg.dev/acme-mcp/mcp"\n'
)
LAMBDA = '[targets.lambda]\nregion = "eu-west-1"\n'
WORKERS = '[targets.workers]\naccount_id = "0123456789abcdef0123456789abcdef"\n'
PUBLIC = '[auth]\nmode = "none"\nacknowledge_public = true\n'


def issues_of(path: Path) -> list[Issue]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return caught.value.issues


def at(issues: list[Issue], where: str) -> Issue:
    matching = [issue for issue in issues if issue.where == where]
    assert matching, [f"{issue.where}: {issue.message}" for issue in issues]
    return matching[0]


# --- auth.mode = "none" needs acknowledge_public = true to reach a cloud --------------------


def test_public_cloud_needs_acknowledgement(project: Project) -> None:
    text = (
        SERVER
        + '[auth]\nmode = "none"\n'
        + LAMBDA
        + "[environments.staging]\n[environments.prod]\n"
    )
    issue = at(issues_of(project(text)), "auth.mode")
    assert issue.line == 5
    assert "'staging', 'prod'" in issue.message and "without authentication" in issue.message
    assert issue.hint is not None
    assert "acknowledge_public = true" in issue.hint
    assert 'mode = "bearer"' in issue.hint and 'mode = "iam"' in issue.hint


def test_a_cloud_environment_counts_even_without_targets(project: Project) -> None:
    issue = at(
        issues_of(project(SERVER + '[auth]\nmode = "none"\n[environments.dev]\n')), "auth.mode"
    )
    assert "environment 'dev'" in issue.message


def test_local_environments_never_need_it(project: Project) -> None:
    text = (
        SERVER + '[auth]\nmode = "none"\n' + LAMBDA
        + '[environments.ci]\nkind = "local"\n[environments.local]\ndescription = "here"\n'
    )  # fmt: skip
    loaded = load_spec(project(text))
    assert loaded.spec.auth.acknowledge_public is False
    assert spec_warnings(loaded) == []


def test_acknowledged_public_cloud_loads(project: Project) -> None:
    loaded = load_spec(project(SERVER + PUBLIC + LAMBDA + "[environments.dev]\n"))
    assert loaded.spec.auth.acknowledge_public is True


@pytest.mark.parametrize("mode", ["bearer", "iam"])
def test_acknowledgement_with_another_mode_is_an_error(project: Project, mode: str) -> None:
    text = MINIMAL + f'[auth]\nmode = "{mode}"\nacknowledge_public = true\n' + LAMBDA
    issue = at(issues_of(project(text)), "auth.acknowledge_public")
    assert f'auth.mode is "{mode}"' in issue.message
    assert issue.hint == "remove the line"
    # written as false, it says nothing and is harmless
    load_spec(project(MINIMAL + f'[auth]\nmode = "{mode}"\nacknowledge_public = false\n' + LAMBDA))


def test_iam_is_checked_for_targets_declared_only_in_an_environment(project: Project) -> None:
    text = (
        MINIMAL + '[auth]\nmode = "iam"\n' + LAMBDA
        + '[environments.dev]\ntargets.workers.account_id = "0123456789abcdef0123456789abcdef"\n'
    )  # fmt: skip
    issue = at(issues_of(project(text)), "auth.mode")
    assert "environments.dev.targets.workers" in issue.message and "no IAM" in issue.message


# --- warnings: what a cloud environment serves to anyone ----------------------------------


def test_public_targets_are_warned_about_once_per_target(project: Project) -> None:
    text = (
        SERVER
        + PUBLIC
        + CLOUDRUN
        + LAMBDA
        + WORKERS
        + "[environments.staging]\n[environments.prod]\n"
    )
    warnings = spec_warnings(load_spec(project(text)))
    by_where = {w.where: w for w in warnings}
    assert sorted(by_where) == ["targets.cloudrun", "targets.lambda", "targets.workers"]
    cloudrun = by_where["targets.cloudrun"]
    assert "Google Cloud Run" in cloudrun.message and "ingress 'all'" in cloudrun.message
    assert "'staging', 'prod'" in cloudrun.message
    assert "anyone on the internet" in cloudrun.message
    assert cloudrun.hint is not None and 'ingress = "internal"' in cloudrun.hint
    assert "Function URL (auth type NONE)" in by_where["targets.lambda"].message
    assert "workers.dev" in by_where["targets.workers"].message
    assert by_where["targets.workers"].hint == (
        'set auth.mode = "bearer" or "oauth" (Workers has no IAM authentication)'
    )
    assert cloudrun.line == 7 and cloudrun.file is not None


def test_internal_ingress_and_unreachable_workers_are_not_public(project: Project) -> None:
    text = (
        SERVER + PUBLIC + CLOUDRUN + 'ingress = "internal"\n' + WORKERS + "workers_dev = false\n"
        + "[environments.staging]\n"
        + '[environments.prod]\ntargets.workers.routes = ["mcp.example.com/*"]\n'
    )  # fmt: skip
    warnings = spec_warnings(load_spec(project(text)))
    assert len(warnings) == 1, [w.message for w in warnings]
    (workers,) = warnings
    assert workers.where == "targets.workers"
    assert "its routes (mcp.example.com/*)" in workers.message
    assert "environment 'prod'" in workers.message and "staging" not in workers.message


def test_a_per_environment_ingress_is_honoured(project: Project) -> None:
    text = (
        SERVER + PUBLIC + CLOUDRUN + 'ingress = "internal"\n'
        + '[environments.staging]\n[environments.demo]\ntargets.cloudrun.ingress = "all"\n'
    )  # fmt: skip
    (warning,) = spec_warnings(load_spec(project(text)))
    assert "environment 'demo'" in warning.message and "staging" not in warning.message


def test_a_target_only_in_an_environment_is_located_there(project: Project) -> None:
    text = SERVER + PUBLIC + '[environments.dev]\ntargets.lambda.region = "eu-west-1"\n'
    (warning,) = spec_warnings(load_spec(project(text)))
    assert warning.where == "environments.dev.targets.lambda"


def test_example_spec_stays_valid_without_warnings() -> None:
    loaded = load_spec(EXAMPLE_SPEC)
    assert loaded.spec.auth.mode == "bearer"
    assert spec_warnings(loaded) == []


# --- cloud_warnings: one environment and target, for plan and deploy ----------------------


def test_cloud_warnings_for_one_deployment(project: Project) -> None:
    text = (
        SERVER
        + PUBLIC
        + CLOUDRUN
        + LAMBDA
        + '[environments.dev]\n[environments.ci]\nkind = "local"\n'
    )
    loaded = load_spec(project(text))
    spec = loaded.spec
    dev = resolve(loaded, "dev", "cloudrun")
    (warning,) = cloud_warnings(spec, "dev", "cloudrun", dev.options)
    assert warning.startswith("Google Cloud Run serves the server without authentication")
    assert "in environment 'dev'" in warning and 'ingress = "internal"' in warning
    # the JSON form of the options (a DeploymentRequest's) gives the same answer
    assert cloud_warnings(spec, "dev", "cloudrun", dev.options.model_dump(mode="json")) == [warning]
    assert cloud_warnings(spec, "dev", "cloudrun", {"ingress": "internal"}) == []
    assert cloud_warnings(spec, "ci", "lambda", resolve(loaded, "ci", "lambda").options) == []
    assert (
        cloud_warnings(spec, "local", "cloudrun", resolve(loaded, "local", "cloudrun").options)
        == []
    )
    (lambda_warning,) = cloud_warnings(
        spec, "dev", "lambda", resolve(loaded, "dev", "lambda").options
    )
    assert "Function URL (auth type NONE)" in lambda_warning


def test_bearer_auth_gets_no_cloud_warning(project: Project) -> None:
    loaded = load_spec(project(MINIMAL + LAMBDA + "[environments.dev]\n"))
    options = resolve(loaded, "dev", "lambda").options
    assert cloud_warnings(loaded.spec, "dev", "lambda", options) == []


# --- Cloud Run options the cloud would refuse late ----------------------------------------


def cloudrun(**values: Any) -> CloudRunOptions:
    return CloudRunOptions.model_validate(values)


def cloudrun_error(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        cloudrun(**values)
    return str(caught.value)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"cpu": 0.08, "concurrency": 1},
        {"cpu": 0.5, "concurrency": 1, "memory": "1Gi"},
        {"cpu": 0.999, "concurrency": 1, "memory": "512Mi"},
        {"cpu": 0.25, "concurrency": 1, "memory": "128Mi"},
        {"cpu": 1, "memory": "4Gi"},
        {"cpu": 2, "memory": "8Gi"},
        {"cpu": 4, "memory": "2Gi"},
        {"cpu": 4, "memory": "16Gi"},
        {"cpu": 6, "memory": "4Gi"},
        {"cpu": 6, "memory": "24Gi"},
        {"cpu": 8, "memory": "4Gi"},
        {"cpu": 8, "memory": "32Gi"},
    ],
)
def test_cloudrun_resources_cloud_run_accepts(values: dict[str, Any]) -> None:
    cloudrun(**values)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"cpu": 0.5}, "cpu = 0.5 (below 1) needs concurrency = 1, not 80"),
        ({"cpu": 0.05, "concurrency": 1}, "greater than or equal to 0.08"),
        ({"cpu": 0.0805, "concurrency": 1}, "steps of 0.001"),
        ({"cpu": 3}, "cpu must be 1, 2, 4, 6 or 8"),
        ({"cpu": 1.5}, "cpu must be 1, 2, 4, 6 or 8"),
        ({"cpu": 16}, "less than or equal to 8"),
        ({"cpu": 0.25, "concurrency": 1, "memory": "1Gi"}, "needs cpu = 0.5 or more"),
        ({"cpu": 0.5, "concurrency": 1, "memory": "2Gi"}, "needs cpu = 1 or more"),
        ({"cpu": 1, "memory": "6Gi"}, "memory = '6Gi' needs cpu = 2 or more"),
        ({"cpu": 2, "memory": "9Gi"}, "needs cpu = 4 or more"),
        ({"cpu": 4, "memory": "17Gi"}, "needs cpu = 6 or more"),
        ({"cpu": 6, "memory": "25Gi"}, "needs cpu = 8 or more"),
        ({"cpu": 4, "memory": "1Gi"}, "cpu = 4 needs memory = '2Gi' or more"),
        ({"cpu": 6, "memory": "2Gi"}, "cpu = 6 needs memory = '4Gi' or more"),
        ({"cpu": 8, "memory": "3Gi"}, "cpu = 8 needs memory = '4Gi' or more"),
        ({"min_instances": 5, "max_instances": 2}, "exceeds max_instances"),
    ],
)
def test_cloudrun_resources_cloud_run_refuses(values: dict[str, Any], fragment: str) -> None:
    assert fragment in cloudrun_error(**values)


def test_every_broken_rule_is_named_at_once() -> None:
    message = cloudrun_error(cpu=0.5, memory="2Gi")
    assert "needs concurrency = 1" in message and "needs cpu = 1 or more" in message


@pytest.mark.parametrize(
    "region",
    ["europe-west1", "us-central1", "northamerica-northeast2", "me-central2", "africa-south1",
     "asia-southeast1", "australia-southeast2", "europe-north2"],
)  # fmt: skip
def test_real_gcp_regions_are_accepted(region: str) -> None:
    assert cloudrun(region=region).region == region


@pytest.mark.parametrize("region", ["europe-west", "us_central1", "US-CENTRAL1", "us-central1-a"])
def test_malformed_gcp_regions_are_refused(region: str) -> None:
    assert "region" in cloudrun_error(region=region)


def test_a_rule_broken_at_the_top_level_names_the_table(project: Project) -> None:
    text = MINIMAL + CLOUDRUN + "cpu = 0.5\n"
    issue = at(issues_of(project(text)), "targets.cloudrun")
    assert "needs concurrency = 1" in issue.message


def test_a_rule_broken_only_in_one_environment_names_it(project: Project) -> None:
    text = (
        MINIMAL + CLOUDRUN + "concurrency = 80\n"
        + "[environments.staging]\ntargets.cloudrun.cpu = 0.5\n"
        + '[environments.prod]\ntargets.cloudrun.memory = "6Gi"\n'
        + "[environments.dev]\ntargets.cloudrun.cpu = 0.5\ntargets.cloudrun.concurrency = 1\n"
    )  # fmt: skip
    issues = issues_of(project(text))
    staging = at(issues, "environments.staging.targets.cloudrun")
    assert "cpu = 0.5 (below 1) needs concurrency = 1, not 80" in staging.message
    assert "(in environment 'staging')" in staging.message
    assert staging.line == 12
    prod = at(issues, "environments.prod.targets.cloudrun")
    assert "needs cpu = 2 or more" in prod.message and "(in environment 'prod')" in prod.message
    assert not [i for i in issues if "dev" in i.where]
    assert len(issues) == 2


def test_a_flag_that_breaks_a_rule_is_named(project: Project) -> None:
    from orchestrator.environments import Overrides
    from orchestrator.errors import InputError

    loaded = load_spec(project(MINIMAL + CLOUDRUN))
    with pytest.raises(InputError) as caught:
        resolve(loaded, "local", "cloudrun", Overrides.from_flags(options=[("cpu", "0.5")]))
    (issue,) = caught.value.issues
    assert issue.where.startswith("--set") and "needs concurrency = 1" in issue.message


# --- Workers options -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"account_id": "0123456789ABCDEF0123456789abcdef"}, "account_id"),
        ({"account_id": "0123456789abcdef0123456789abcde"}, "account_id"),
        ({"cpu_ms": 5}, "cpu_ms"),
        ({"cpu_ms": 300_001}, "cpu_ms"),
    ],
)
def test_workers_options_cloudflare_refuses(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WorkersOptions.model_validate(values)
    assert caught.value.errors()[0]["loc"] == (field,)


def test_workers_cpu_ms_range() -> None:
    assert WorkersOptions(cpu_ms=300_000).cpu_ms == 300_000
    assert WorkersOptions(cpu_ms=10).cpu_ms == 10


# --- the command line ------------------------------------------------------------------------


def test_validate_prints_warnings_and_succeeds(run_cli: Run, project: Project) -> None:
    path = project(SERVER + PUBLIC + LAMBDA + "[environments.dev]\n")
    result = run_cli("--spec", str(path), "validate")
    assert result.code == 0, result.err
    assert f"warning: {path}:7: targets.lambda: AWS Lambda serves the server" in result.err
    assert "  hint: set auth.mode" in result.err
    assert "ok:" in result.out
    data = run_cli("--spec", str(path), "validate", "--json").json()
    assert data["ok"] is True
    (warning,) = data["warnings"]
    assert warning["path"] == "targets.lambda" and warning["line"] == 7
    assert "anyone on the internet" in warning["message"]


def test_validate_refuses_an_unacknowledged_public_cloud(run_cli: Run, project: Project) -> None:
    path = project(SERVER + '[auth]\nmode = "none"\n' + LAMBDA + "[environments.dev]\n")
    result = run_cli("--spec", str(path), "validate")
    assert result.code == 2
    assert f"error: {path}:5: auth.mode:" in result.err
    assert "acknowledge_public = true" in result.err
    assert "Traceback" not in result.err
    data = run_cli("--spec", str(path), "validate", "--json").json()
    assert data["ok"] is False and data["errors"][0]["path"] == "auth.mode"


def test_validate_names_the_environment_of_a_broken_override(
    run_cli: Run, project: Project
) -> None:
    path = project(MINIMAL + CLOUDRUN + "[environments.staging]\ntargets.cloudrun.cpu = 0.5\n")
    result = run_cli("--spec", str(path), "validate")
    assert result.code == 2
    assert "environments.staging.targets.cloudrun: cpu = 0.5 (below 1)" in result.err
    assert "(in environment 'staging')" in result.err


def test_validate_example_shows_no_warning(run_cli: Run) -> None:
    result = run_cli("--spec", str(EXAMPLE_SPEC), "validate", "--json")
    assert result.code == 0
    assert result.json()["warnings"] == []
