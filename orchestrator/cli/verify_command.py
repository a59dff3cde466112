"""`verify`: the official MCP conformance suite and the auth discovery chain against a
deployment (`--target T [--env E]`) or any MCP URL."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from orchestrator.cli.options import EXIT_FAILED, json_option, load
from orchestrator.cli.render import emit_json

if TYPE_CHECKING:
    from orchestrator.verify.report import VerifyReport

FIXTURE_REASON = "it calls the suite's fixture"
MARKS = {
    "passed": ("ok", "green"),
    "SUCCESS": ("ok", "green"),
    "warning": ("warning", "yellow"),
    "WARNING": ("warning", "yellow"),
    "failed": ("FAILED", "red"),
    "FAILURE": ("FAILED", "red"),
    "unsupported": ("unsupported", "cyan"),
    "INFO": ("info", "cyan"),
}


@click.command()
@click.argument("url", required=False)
@click.option("--target", help="Verify this target's deployment in --env (instead of URL).")
@click.option("--env", "environment", help="Environment of --target (default: local).")
@click.option(
    "--token-env",
    metavar="NAME",
    help="Environment variable holding the token (an OAuth access token, or a bearer token; "
    "never pass one as an argument). With --target, the default is the environment's own "
    "bearer token.",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    metavar="NAME",
    help="Run only this conformance scenario (repeatable; it still has to apply).",
)
@json_option
@click.pass_context
def verify(
    ctx: click.Context,
    url: str | None,
    target: str | None,
    environment: str | None,
    token_env: str | None,
    scenarios: tuple[str, ...],
    as_json: bool,
) -> None:
    """Check an endpoint: the official MCP conformance suite and OAuth discovery.

    Runs the scenarios of @modelcontextprotocol/conformance (installed from npm once, with
    Node.js 22) that apply to the server, by what its initialize result advertises, and walks
    the OAuth discovery chain (401 challenge, protected resource metadata, the issuer's
    metadata). Give a URL, or --target (and --env, default local) for that deployment and
    its own token. Exits 0 when everything passed (warnings allowed), 1 when a check failed,
    2 for bad input.
    """
    from orchestrator.errors import input_error
    from orchestrator.verify.run import verify as run_verify
    from orchestrator.verify.scenarios import BY_NAME

    if (url is None) == (target is None):
        raise input_error("verify", "give either a URL or --target", "e.g. verify --target lambda")
    if environment is not None and target is None:
        raise input_error("--env", "--env needs --target")
    for name in scenarios:
        if name not in BY_NAME:
            from orchestrator.suggest import hint_for

            raise input_error(
                "--scenario", f"no server scenario '{name}'", hint_for(name, BY_NAME, noun="name")
            )
    token = None
    if token_env is not None:
        token = os.environ.get(token_env)
        if not token:
            raise input_error("--token-env", f"environment variable {token_env} is empty or unset")
    expect_oauth = False
    if target is not None:
        from orchestrator.deploy import gate, observe

        loaded = load(ctx)
        env_name = environment or "local"
        deployed, _log = observe.endpoint(loaded, target, env_name)
        url = deployed.url
        expect_oauth = loaded.spec.auth.mode == "oauth"
        if token_env is None:
            token = gate.environment_token(loaded, env_name)
    assert url is not None
    from orchestrator.cli.render import progress_reporter

    with progress_reporter(enabled=not as_json) as progress:
        report = run_verify(
            url,
            token=token,
            target=target,
            expect_oauth=expect_oauth,
            only=list(scenarios) or None,
            progress=progress,
        )
    if as_json:
        emit_json(report.to_dict())
    else:
        render(report)
    if not report.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


def render(report: VerifyReport) -> None:
    """The report for people: the scenarios, the ones that do not apply, the auth chain."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from orchestrator.errors import printable

    def plain(text: str, style: str = "") -> Text:
        return Text(printable(text, limit=1 << 12), style=style)

    def mark(status: str) -> Text:
        word, colour = MARKS.get(status, (status, ""))
        return Text(word, style=colour)

    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 120)
    server = report.server
    about = f" ({server.get('name')}, MCP {server.get('protocol_version')})" if server else ""
    on = f" on {report.target}" if report.target else ""
    console.print(plain(f"verify {report.url}{about}{on}", "bold"))
    suite = report.suite
    console.print(
        plain(f"conformance: {suite['package']} {suite['version']} (Node.js {suite['node']})"),
        soft_wrap=True,
    )
    table = Table()
    for column in ("scenario", "result", "detail"):
        table.add_column(column, overflow="fold", no_wrap=column != "detail")
    for result in report.scenarios:
        bad = [c for c in result.checks if c.status in ("FAILURE", "WARNING")]
        detail = result.note or "; ".join(c.message or c.description for c in bad)
        table.add_row(plain(result.name), mark(result.status), plain(detail))
    if report.scenarios:
        console.print(table)
    fixtures = [s.name for s in report.skipped if s.reason.startswith(FIXTURE_REASON)]
    others = [s for s in report.skipped if not s.reason.startswith(FIXTURE_REASON)]
    if others or fixtures:
        console.print(plain("not applicable:"))
    for skip in others:
        console.print(plain(f"  {skip.name}: {skip.reason}"), soft_wrap=True)
    if fixtures:
        console.print(
            plain(
                f"  {len(fixtures)} scenarios call fixtures of the suite's reference server (a "
                f"tool, prompt or resource by name) this server does not offer: "
                + ", ".join(fixtures)
            ),
            soft_wrap=True,
        )
    console.print(plain(f"auth discovery: {report.auth.summary}"), soft_wrap=True)
    chain = Table()
    for column in ("step", "result", "detail"):
        chain.add_column(column, overflow="fold", no_wrap=column != "detail")
    for step in report.auth.steps:
        chain.add_row(plain(step.id), mark(step.status), plain(step.message or step.description))
    console.print(chain)
    if report.problem:
        click.echo(f"error: {printable(report.problem)}", err=True)
    if report.incomplete:
        click.echo(f"warning: {printable(report.incomplete)}", err=True)
    if report.hint:
        click.echo(f"  hint: {printable(report.hint)}", err=True)
    verdict = {"passed": "ok", "warning": "ok, with warnings", "failed": "FAILED"}[report.status]
    summary = f"{verdict}: {report.summary()} ({report.seconds:.1f} s)"
    console.print(plain(summary), soft_wrap=True)
