"""The `mcp-deploy` click group: registers the command modules, expands the deploy shorthand
and maps outcomes to exit codes. Heavy modules are imported inside commands.

Exit codes (docs/cli.md): 0 success; 1 the operation failed; 2 invalid input (spec, flags,
names, usage); 3 the smoke test failed and the previous deployment was restored; 4 the smoke
test failed and nothing was restored; 70 internal error; 75 busy (a cloud stack locked by
another update); 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from orchestrator import __version__
from orchestrator.cli.build_command import build
from orchestrator.cli.deploy_commands import deploy, destroy, logs, plan, run_command, status
from orchestrator.cli.fleet_commands import matrix
from orchestrator.cli.options import EXIT_FAILED, EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED
from orchestrator.cli.options import EXIT_OK as EXIT_OK
from orchestrator.cli.release_commands import history, promote, rollback
from orchestrator.cli.render import emit_input_error, emit_internal_error, emit_operation_error
from orchestrator.cli.smoke_command import smoke
from orchestrator.cli.spec_commands import config, init, schema, validate
from orchestrator.cli.verify_command import verify

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "terminal_width": 100}


@click.group(context_settings=CONTEXT)
@click.option(
    "--spec",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="MCP_DEPLOY_SPEC",
    help="Spec file (default: nearest mcp-deploy.toml or pyproject.toml [tool.mcp-deploy]).",
)
@click.version_option(__version__, prog_name="mcp-deploy", message="%(prog)s %(version)s")
def cli(spec: Path | None) -> None:
    """Build an MCP server once, prove it locally, deploy the same artifact to AWS Lambda,
    Google Cloud Run or Cloudflare Workers.

    \b
    Deploy:  mcp-deploy --target T [--env E] [deploy options]   (short for: deploy ...)

    Exit codes: 0 ok, 1 operation failed, 2 invalid input, 3 smoke test failed and rolled
    back, 4 smoke test failed and not rolled back, 70 internal error, 75 busy (a cloud stack
    locked by another update: retry later), 130 interrupted.
    """


COMMANDS = (init, validate, schema, config, build, plan, deploy, promote, rollback, history, matrix)
for command in (*COMMANDS, run_command, status, logs, destroy, smoke, verify):
    cli.add_command(command)

_GROUP_FLAGS = ("-h", "--help", "--version")


def expand_shorthand(args: list[str]) -> list[str]:
    """`mcp-deploy [--spec S] --target T ...` is `mcp-deploy [--spec S] deploy --target T ...`:
    when the first argument after the group's own `--spec` is an option the group does not
    have, `deploy` is inserted before it."""
    index = 0
    while index < len(args):
        if args[index] == "--spec":
            index += 2
        elif args[index].startswith("--spec="):
            index += 1
        else:
            break
    if index < len(args) and args[index].startswith("-") and args[index] not in _GROUP_FLAGS:
        return [*args[:index], "deploy", *args[index:]]
    return args


def render_help() -> str:
    """The top-level help text, exactly as `mcp-deploy --help` prints it."""
    with click.Context(cli, info_name="mcp-deploy", **CONTEXT) as ctx:  # type: ignore[arg-type]
        return ctx.get_help() + "\n"


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run(args: list[str]) -> int:
    """Invoke the click group and map outcomes to exit codes (never a traceback for bad input).
    SIGTERM (a cancelled CI job) is handled like Ctrl-C: the command ends its step cleanly."""
    import signal

    from orchestrator.errors import InputError, OperationError

    signal.signal(signal.SIGTERM, _terminate)
    try:
        # Without standalone mode, click returns a `click.exceptions.Exit` code as a value.
        code = cli.main(args=expand_shorthand(args), prog_name="mcp-deploy", standalone_mode=False)
    except InputError as error:
        emit_input_error(error)
        return EXIT_INPUT
    except OperationError as error:
        emit_operation_error(error)
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        _show_usage_error(error)
        return error.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except Exception as error:
        if os.environ.get("MCP_DEPLOY_DEBUG"):
            raise
        mapped = _known_failure(error)
        if isinstance(mapped, InputError):
            emit_input_error(mapped)
            return EXIT_INPUT
        if isinstance(mapped, OperationError):
            emit_operation_error(mapped)
            return EXIT_FAILED
        emit_internal_error(error)
        return EXIT_INTERNAL
    return code if isinstance(code, int) else EXIT_OK


def _show_usage_error(error: click.ClickException) -> None:
    """click's own message (it echoes arguments as given), terminal-safe."""
    import io

    from orchestrator.errors import printable

    buffer = io.StringIO()
    error.show(file=buffer)
    click.echo("\n".join(printable(line) for line in buffer.getvalue().splitlines()), err=True)


def _known_failure(error: Exception) -> Exception | None:
    """What an exception no command turned into an `InputError` or `OperationError` means,
    when the machine or the input, not a bug, explains it: a full disk or read-only file
    system (exit 1); a path too long or holding a NUL byte, a working directory that was
    deleted, input nested deeper than Python can follow (exit 2). None: a bug (exit 70)."""
    import errno

    from orchestrator.errors import InputError, Issue, OperationError

    if isinstance(error, RecursionError):
        return InputError(
            [
                Issue(
                    where="",
                    message="the input is nested too deeply to process",
                    hint="flatten the value (a --set value, say); if nothing you gave is "
                    "deeply nested, this is a bug: rerun with MCP_DEPLOY_DEBUG=1 and report it",
                )
            ]
        )
    if isinstance(error, ValueError) and "null byte" in str(error):
        return InputError([Issue(where="", message="a path given contains a NUL byte")])
    if not isinstance(error, OSError):
        return None
    name = str(error.filename) if error.filename is not None else None
    about = f" ({name})" if name else ""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return OperationError(
            f"no space left on the device{about}", "free some space, then run it again"
        )
    if error.errno == errno.EROFS:
        return OperationError(f"the file system is read-only{about}")
    if error.errno == errno.ENAMETOOLONG:
        return InputError([Issue(where=name or "", message="path too long for the file system")])
    if isinstance(error, FileNotFoundError) and name is None:
        try:
            os.getcwd()
        except FileNotFoundError:
            return InputError(
                [
                    Issue(
                        where="",
                        message="the current directory no longer exists",
                        hint="cd into the project again, or pass --spec with an absolute path",
                    )
                ]
            )
    return None


if __name__ == "__main__":  # regenerate help.txt: python -m orchestrator.cli.app > help.txt
    click.echo(render_help(), nl=False)
