"""`verify(url, ...)`: the official MCP conformance suite's applicable scenarios and the auth
discovery chain against one MCP endpoint, as one `VerifyReport`.

Steps: install (once per machine) the pinned suite and Node.js; walk the discovery chain
(no credentials); initialize with the token and read what the server advertises; choose the
scenarios that apply (`scenarios.plan`); run them through a loopback proxy that adds the token
(`proxy.TokenProxy`); mark the failures the target's platform cannot avoid (`limits`). Never
raises for a failing server; `InputError` for a URL that is not one, `OperationError` when the
suite cannot be installed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from orchestrator.verify.conformance import PARALLEL, run_scenarios
from orchestrator.verify.discovery import discover
from orchestrator.verify.limits import apply_limits, not_run
from orchestrator.verify.probe import ProbeError, probe
from orchestrator.verify.proxy import TokenProxy
from orchestrator.verify.report import VerifyReport
from orchestrator.verify.scenarios import RULES, Skipped, plan
from orchestrator.verify.toolchain import NODE_VERSION, SUITE_PACKAGE, SUITE_VERSION, toolchain

Progress = Callable[[str], None]
TOKEN_HINT = "give an access token for it: --token-env NAME (an environment variable)"


def _refused_hint(token: str | None, status: int | None) -> str:
    if status in (401, 403) and token is None:
        return TOKEN_HINT
    if status in (401, 403):
        return "check the token: it must be the deployment's own (bearer) or an access token for it"
    if status == 421:
        return "the server refused the Host it was sent (421): see `mcp-deploy smoke` for the fix"
    return "check the URL and the server's log (mcp-deploy logs)"


def verify(
    url: str,
    *,
    token: str | None = None,
    target: str | None = None,
    expect_oauth: bool = False,
    only: list[str] | None = None,
    parallel: int = PARALLEL,
    progress: Progress = lambda _step: None,
) -> VerifyReport:
    """See the module docstring. `target`: the platform the deployment runs on (None for a
    bare URL); `expect_oauth`: the deployment is meant to be an OAuth resource server (the
    chain fails if it is not); `only`: run just these scenarios (if they apply)."""
    from orchestrator.smoke import check_url

    check_url(url)
    started = time.perf_counter()
    tools = toolchain(progress)
    suite = {"package": SUITE_PACKAGE, "version": SUITE_VERSION, "node": NODE_VERSION}
    progress("verify: the auth discovery chain")
    auth = discover(url, expect_oauth=expect_oauth)
    report = VerifyReport(url=url, target=target, suite=suite, auth=auth)
    try:
        progress("verify: initialize")
        facts = probe(url, token)
    except ProbeError as error:
        _not_initialized(report, error, token, auth.kind)
        report.seconds = time.perf_counter() - started
        return report
    report.server = facts.to_dict()
    names, report.skipped = plan(facts, only)
    to_run, unsupported = not_run(names, target) if only is None else (names, [])
    progress(f"verify: {len(to_run)} conformance scenario(s)")
    with TokenProxy(url, token) as proxy:
        results = run_scenarios(tools, proxy.url, to_run, parallel=parallel)
    apply_limits(results, target)
    by_name = {result.name: result for result in results + unsupported}
    report.scenarios = [by_name[name] for name in names]
    report.seconds = time.perf_counter() - started
    return report


def _not_initialized(report: VerifyReport, error: ProbeError, token: str | None, kind: str) -> None:
    """Fill in why no scenario ran: an OAuth server and no token is incomplete (a warning);
    anything else is a failure."""
    reason = f"the server could not be initialized: {error.message}"
    report.skipped = [Skipped(rule.name, reason) for rule in RULES]
    if token is None and kind == "oauth" and error.status == 401:
        report.incomplete = "no conformance scenario ran: the OAuth server needs an access token"
        report.hint = TOKEN_HINT
        return
    report.problem = reason
    report.hint = _refused_hint(token, error.status)
