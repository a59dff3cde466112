"""A failed Pulumi CLI call as an error people can act on: the CLI's own diagnostics, without
the Automation API's framing, secret values redacted; a locked stack as `BusyError`."""

from __future__ import annotations

from pulumi.automation.errors import ConcurrentUpdateError

from orchestrator.errors import BusyError, OperationError
from orchestrator.redact import Redactor


def failure(what: str, error: Exception, redactor: Redactor | None) -> OperationError:
    """`what` failed because of `error` (a `CommandError`): the error to raise."""
    text = redactor.clean(str(error)) if redactor is not None else str(error)
    detail = cli_words(text)
    if isinstance(error, ConcurrentUpdateError):
        return BusyError(
            f"{what}: the stack is locked by another update",
            hint="wait for that update to finish; if no update runs (a runner that was "
            "killed), clear the lock with `pulumi cancel` in the stack's work directory",
            detail=detail,
        )
    return OperationError(what, hint="the Pulumi CLI's own words are above", detail=detail)


def cli_words(text: str, limit: int = 25) -> str:
    """What matters in a failed CLI call's text (`CommandError`): its diagnostics when it
    printed any, else its last lines, without the Automation API's framing and the progress
    display's spinner lines."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("@ ") or line.startswith("code: "):
            continue
        for prefix in ("stdout:", "stderr:"):
            line = line.removeprefix(prefix).strip()
        if line:
            lines.append(line)
    if "Diagnostics:" in lines:
        lines = lines[lines.index("Diagnostics:") + 1 :]
        if "Resources:" in lines:
            lines = lines[: lines.index("Resources:")]
    return "\n".join(lines[-limit:])
