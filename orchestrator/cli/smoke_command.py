"""`smoke`: MCP checks of any URL, or of a deployment by target and environment."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import click

from orchestrator.cli.options import EXIT_FAILED, json_option, load
from orchestrator.cli.render import emit_json

if TYPE_CHECKING:
    from orchestrator.smoke import SmokeResult


def smoke_timings(result: SmokeResult, tool: str | None) -> str:
    cold = result.cold_start_ms
    return (
        (f"cold start {cold:.0f} ms (start to first MCP response), " if cold else "")
        + f"first response {result.first_response_ms:.0f} ms, tools/list "
        f"{result.list_tools_ms:.0f} ms"
        + (f", {tool} {result.call_ms:.0f} ms" if result.call_ms is not None else "")
    )


@click.command()
@click.argument("url", required=False)
@click.option("--target", help="Smoke-test this target's deployment in --env (instead of URL).")
@click.option("--env", "environment", help="Environment of --target (default: local).")
@click.option(
    "--token-env",
    metavar="NAME",
    help="Environment variable holding the bearer token (never pass a token as an argument). "
    "With --target, the default is the environment's own token secret.",
)
@click.option(
    "--tool", help="Tool to call after tools/list (with --target: the spec's smoke.tool)."
)
@click.option("--arguments", "arguments_json", help="The call's arguments (JSON).")
@click.option("--expect", help="Substring the tool result must contain.")
@click.option("--timeout", type=float, help="Seconds for the whole test (default 30).")
@json_option
@click.pass_context
def smoke(
    ctx: click.Context,
    url: str | None,
    target: str | None,
    environment: str | None,
    token_env: str | None,
    tool: str | None,
    arguments_json: str | None,
    expect: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Check an MCP endpoint: initialize, tools/list and a tool call, timed.

    Give a URL, or --target (and --env, default local) to test that deployment with the spec's
    smoke call and the environment's token. Exits 1 when the server fails the test, saying why
    in plain terms.
    """
    from orchestrator.errors import input_error
    from orchestrator.smoke import smoke as run_smoke

    if (url is None) == (target is None):
        raise input_error("smoke", "give either a URL or --target", "e.g. smoke --target lambda")
    if environment is not None and target is None:
        raise input_error("--env", "--env needs --target")
    arguments: dict[str, Any] = {}
    if arguments_json is not None:
        try:
            arguments = json.loads(arguments_json)
        except ValueError:
            raise input_error(
                "--arguments", "is not valid JSON", 'e.g. --arguments \'{"name": "x"}\''
            ) from None
        if not isinstance(arguments, dict):
            raise input_error("--arguments", "must be a JSON object")
    token = None
    if token_env is not None:
        token = os.environ.get(token_env)
        if not token:
            raise input_error("--token-env", f"environment variable {token_env} is empty or unset")
    log_tail = ""
    oauth_without_token = False
    host: str | None = None
    sdk_of: Callable[[], Mapping[str, str]] | None = None
    if target is not None:
        from orchestrator.deploy import gate, observe

        loaded = load(ctx)
        env_name = environment or "local"
        deployed, log_tail = observe.endpoint(loaded, target, env_name)
        url, host = deployed.url, deployed.host or None
        if deployed.artifact_digest:
            sdk_of = gate.sdk_reader(loaded, deployed.artifact_digest)
        if token_env is None:
            token = gate.environment_token(loaded, env_name)
            oauth_without_token = token is None and loaded.spec.auth.mode == "oauth"
        settings = loaded.spec.smoke
        tool = tool or settings.tool
        arguments = arguments if arguments_json is not None else settings.arguments
        expect = expect if expect is not None else settings.expect
        timeout = timeout or settings.timeout
    assert url is not None
    if oauth_without_token:
        from orchestrator.deploy.gate import oauth_challenge_smoke

        result = oauth_challenge_smoke(url, timeout=timeout or 30.0)
    else:
        result = run_smoke(
            url,
            token=token,
            tool=tool,
            arguments=arguments,
            expect=expect,
            timeout=timeout or 30.0,
            host=host,
            sdk_of=sdk_of,
        )
    if as_json:
        emit_json(result.to_dict())
    elif result.ok and oauth_without_token:
        click.echo(f"ok: {url} (OAuth challenge and metadata)")
        click.echo(f"  note: {result.hint}")
    elif result.ok:
        click.echo(f"ok: {url} ({result.server}; {len(result.tools)} tools)")
        click.echo("  " + smoke_timings(result, tool))
    else:
        click.echo(f"error: smoke test of {url} failed: {result.failure}", err=True)
        if result.hint:
            click.echo(f"  hint: {result.hint}", err=True)
        if log_tail:
            click.echo("  server log (last lines):\n" + log_tail.rstrip(), err=True)
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED)
