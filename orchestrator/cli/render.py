"""Output for people (text) and pipelines (`--json`). Commands call these; nothing else prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from orchestrator.environments import ResolvedEnvironment, Setting
    from orchestrator.errors import InputError, OperationError


class OutputMode:
    """Whether the running command was asked for JSON (set by the `--json` option)."""

    json: bool = False


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def emit_input_error(error: InputError) -> None:
    """Bad input: JSON on stdout under `--json`, else readable lines on stderr."""
    if OutputMode.json:
        emit_json(error.to_dict())
    else:
        click.echo(error.render(), err=True)


def emit_operation_error(error: OperationError) -> None:
    """A failed operation: JSON on stdout under `--json`, else readable lines on stderr."""
    if OutputMode.json:
        emit_json(error.to_dict())
    else:
        click.echo(error.render(), err=True)


@contextmanager
def progress_reporter(enabled: bool) -> Iterator[Callable[[str], None]]:
    """A callback that shows the current step (a spinner on a terminal, lines otherwise)."""
    if not enabled:
        yield lambda _step: None
        return
    if not sys.stderr.isatty():
        yield lambda step: click.echo(f"... {step}", err=True)
        return
    from rich.console import Console
    from rich.text import Text

    from orchestrator.errors import printable

    with Console(stderr=True).status("building") as status:
        yield lambda step: status.update(Text(printable(step)))


def emit_internal_error(error: BaseException) -> None:
    """A bug: one line naming the exception (terminal-safe), and how to report it."""
    from orchestrator.errors import printable

    message = f"internal error: {type(error).__name__}: {error}"
    if OutputMode.json:
        emit_json({"ok": False, "internal_error": message})
    else:
        click.echo(printable(message), err=True)
        click.echo("  hint: rerun with MCP_DEPLOY_DEBUG=1 for a traceback, and report it", err=True)


def _format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def explain_table(
    resolved: ResolvedEnvironment, spec_path: str, settings: Sequence[Setting]
) -> None:
    """The effective values of one environment on one target, with the layer of each. What
    the user wrote is shown as plain text (never read as rich markup), terminal-safe."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from orchestrator.errors import printable

    def plain(text: str) -> Text:
        return Text(printable(text, limit=1 << 16))

    title = f"{resolved.server} · environment {resolved.environment} · target {resolved.target}"
    table = Table(title=plain(title), caption=plain(f"spec: {spec_path}"), title_justify="left")
    table.add_column("key", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("from", no_wrap=True)
    for setting in settings:
        origin: str = setting.layer
        if origin == "environment":
            origin = f"environment {resolved.environment}"
        table.add_row(plain(setting.key), plain(_format_value(setting.value)), plain(origin))
    Console(soft_wrap=False, width=None if sys.stdout.isatty() else 120).print(table)
