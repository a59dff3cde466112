"""Options and helpers shared by the command modules (nothing heavy imported here)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from orchestrator.cli.render import OutputMode

if TYPE_CHECKING:
    from orchestrator.environments import Overrides
    from orchestrator.spec.loader import LoadedSpec

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


def _set_json(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    OutputMode.json = value
    return value


def json_option(func: F) -> F:
    """`--json`: machine-readable output on stdout (errors too)."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        is_eager=True,
        callback=_set_json,
        help="Write JSON to stdout instead of text.",
    )(func)


def _pairs(
    _ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got '{item}'", param=param)
        pairs.append((key.strip(), value))
    return pairs


def layer_options(func: F) -> F:
    """`--config KEY=VALUE` and `--set OPTION=VALUE` (the flag layer)."""
    func = click.option(
        "--set",
        "option_flags",
        multiple=True,
        callback=_pairs,
        metavar="OPTION=VALUE",
        help="Override a target option, e.g. memory=1024 (repeatable).",
    )(func)
    return click.option(
        "--config",
        "config_flags",
        multiple=True,
        callback=_pairs,
        metavar="KEY=VALUE",
        help="Override a config value (repeatable).",
    )(func)


def overrides(
    config_flags: list[tuple[str, str]], option_flags: list[tuple[str, str]]
) -> Overrides:
    from orchestrator.environments import Overrides

    return Overrides.from_flags(config_flags, option_flags)


def load(ctx: click.Context) -> LoadedSpec:
    """The spec named by the root `--spec` option (or found upwards)."""
    from orchestrator.spec.loader import load_spec

    spec_path: Path | None = ctx.find_root().params.get("spec")
    return load_spec(spec_path)
