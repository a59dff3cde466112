"""`mcp-deploy verify`: bad input is exit 2 naming the flag (never a traceback), the report's
status is the exit code (0 passed or warned, 1 failed), --json for pipelines, text for people;
and the report's own rules (status, summary, failure lines)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.verify.conformance import Check, ScenarioResult
from orchestrator.verify.discovery import AuthChain
from orchestrator.verify.report import VerifyReport
from orchestrator.verify.scenarios import Skipped
from tests.conftest import CliResult

URL = "http://127.0.0.1:9/mcp"
SUITE = {"package": "@modelcontextprotocol/conformance", "version": "0.1.16", "node": "22.23.5"}


def report(*statuses: str, auth: str = "not-oauth", **changes: Any) -> VerifyReport:
    scenarios = [
        ScenarioResult(
            f"s{n}",
            status,
            [Check("c", "FAILURE" if status == "failed" else "SUCCESS", "d", "went \x1b[31mred")],
            note="unsupported on lambda: why" if status == "unsupported" else "",
        )
        for n, status in enumerate(statuses)
    ]
    chain = AuthChain("bearer", auth, [Check("challenge", "INFO", "x", "not an OAuth server")])
    found = VerifyReport(
        url=URL,
        target=None,
        suite=SUITE,
        auth=chain,
        server={"name": "demo", "protocol_version": "2025-11-25"},
        scenarios=scenarios,
        skipped=[
            Skipped("tools-call-error", "it calls the suite's fixture tool test_error_handling"),
            Skipped("logging-set-level", "the server does not advertise the logging capability"),
        ],
    )
    for key, value in changes.items():
        setattr(found, key, value)
    return found


@pytest.mark.parametrize(
    ("statuses", "auth", "changes", "expected"),
    [
        (("passed",), "not-oauth", {}, "passed"),
        (("passed", "unsupported"), "passed", {}, "passed"),
        (("passed", "warning"), "not-oauth", {}, "warning"),
        (("passed",), "warning", {}, "warning"),
        (("passed",), "not-oauth", {"incomplete": "no token"}, "warning"),
        (("passed", "failed"), "not-oauth", {}, "failed"),
        (("passed",), "failed", {}, "failed"),
        ((), "not-oauth", {"problem": "initialize was answered HTTP 401"}, "failed"),
    ],
)
def test_report_status(
    statuses: tuple[str, ...], auth: str, changes: dict[str, Any], expected: str
) -> None:
    found = report(*statuses, auth=auth, **changes)
    assert found.status == expected
    assert found.ok is (expected != "failed")
    json.dumps(found.to_dict())


def test_report_summary_and_failures() -> None:
    found = report("passed", "failed", "unsupported")
    assert found.counts() == {
        "passed": 1,
        "warning": 0,
        "failed": 1,
        "unsupported": 1,
        "skipped": 2,
    }
    assert found.summary().startswith("conformance 1 passed, 1 failed, 1 unsupported, 2 not")
    assert found.failure_lines() == ["s1 failed: went \x1b[31mred"]


@pytest.fixture
def fake_verify(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`verify` returns the report queued in `calls[0]["report"]`; records the arguments."""
    calls: list[dict[str, Any]] = [{"report": report("passed")}]

    def fake(url: str, **kwargs: Any) -> VerifyReport:
        calls.append({"url": url, **kwargs})
        found: VerifyReport = calls[0]["report"]
        found.url = url
        return found

    monkeypatch.setattr("orchestrator.verify.run.verify", fake)
    return calls


@pytest.mark.parametrize(
    ("args", "where"),
    [
        ([], "verify"),
        ([URL, "--target", "lambda"], "verify"),
        ([URL, "--env", "local"], "--env"),
        ([URL, "--scenario", "pnig"], "--scenario"),
        ([URL, "--token-env", "MCP_DEPLOY_TEST_UNSET_VARIABLE"], "--token-env"),
    ],
)
def test_bad_input_is_exit_2_naming_the_flag(
    run_cli: Callable[..., CliResult], args: list[str], where: str, fake_verify: Any
) -> None:
    done = run_cli("verify", *args)
    assert done.code == 2, done
    assert where in done.err and "Traceback" not in done.err
    done = run_cli("verify", *args, "--json")
    assert done.code == 2 and json.loads(done.out)["ok"] is False


def test_a_misspelt_scenario_gets_a_suggestion(
    run_cli: Callable[..., CliResult], fake_verify: Any
) -> None:
    done = run_cli("verify", URL, "--scenario", "pnig")
    assert "did you mean 'ping'?" in done.err


def test_a_url_that_is_not_one_is_exit_2(run_cli: Callable[..., CliResult]) -> None:
    done = run_cli("verify", "ftp://x")
    assert done.code == 2 and "URL" in done.err


def test_passed_is_exit_0_with_json(
    run_cli: Callable[..., CliResult],
    fake_verify: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VERIFY_TOKEN", "tok-abc")
    done = run_cli("verify", URL, "--token-env", "VERIFY_TOKEN", "--scenario", "ping", "--json")
    assert done.code == 0, done
    data = json.loads(done.out)
    assert data["ok"] is True and data["status"] == "passed" and data["url"] == URL
    call = fake_verify[1]
    assert call["token"] == "tok-abc" and call["only"] == ["ping"] and call["target"] is None
    assert "tok-abc" not in done.out + done.err


def test_failed_is_exit_1_and_the_text_names_it(
    run_cli: Callable[..., CliResult], fake_verify: list[dict[str, Any]]
) -> None:
    fake_verify[0]["report"] = report("passed", "failed", "unsupported", hint="do this")
    done = run_cli("verify", URL)
    assert done.code == 1
    assert "FAILED" in done.out and "s1" in done.out
    assert "\x1b[31m" not in done.out  # what a server says is shown terminal-safe
    assert "unsupported on lambda: why" in done.out
    assert "logging-set-level: the server does not advertise" in done.out
    assert "1 scenarios call fixtures" in done.out and "tools-call-error" in done.out
    assert "hint: do this" in done.err


def test_warnings_are_exit_0(
    run_cli: Callable[..., CliResult], fake_verify: list[dict[str, Any]]
) -> None:
    fake_verify[0]["report"] = report(
        auth="not-oauth", incomplete="no conformance scenario ran", hint="--token-env NAME"
    )
    done = run_cli("verify", URL)
    assert done.code == 0
    assert "warning: no conformance scenario ran" in done.err


def test_target_needs_a_deployment(
    run_cli: Callable[..., CliResult], project: Callable[[str], Any], monkeypatch: Any
) -> None:
    spec = project(
        """\
        [server]
        name = "demo"
        entry = "demo.app:app"

        [auth]
        mode = "none"

        [targets.lambda]
        region = "eu-west-1"
        """
    )
    monkeypatch.chdir(spec.parent)
    done = run_cli("verify", "--target", "lambda")
    assert done.code == 2, done
    assert "nothing is deployed to 'local' on lambda" in done.err
