"""Pulumi engine events as mcp-deploy progress lines and plan changes, secrets redacted.

`EventReporter` is the `on_event` callback of preview, up and destroy: each resource step
becomes one line (`lambda: + aws:lambda/function:Function toolbox-staging (create)`), each
warning or error diagnostic a line, and a preview's steps are collected as `Change`s. Every
line passes through the deployment's `Redactor` first: a provider error that quotes an input
never prints a secret value this process knows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pulumi.automation import EngineEvent, OpType

from orchestrator.deploy.engine import Change
from orchestrator.redact import Redactor

Progress = Callable[[str], None]

# How each step reads in a plan (`Change.action`), and its one-character mark in progress.
_ACTIONS: dict[str, tuple[str, str]] = {
    OpType.CREATE.value: ("create", "+"),
    OpType.UPDATE.value: ("update", "~"),
    OpType.REPLACE.value: ("replace", "+-"),
    OpType.CREATE_REPLACEMENT.value: ("replace", "++"),
    OpType.DELETE_REPLACED.value: ("delete", "--"),
    OpType.DELETE.value: ("delete", "-"),
    OpType.SAME.value: ("keep", "="),
    OpType.READ.value: ("read", ">"),
    OpType.REFRESH.value: ("refresh", "~"),
    OpType.IMPORT.value: ("import", "="),
}
_ROOT_STACK = "pulumi:pulumi:Stack"


def resource_name(urn: str) -> str:
    """The logical name at the end of a URN (`urn:pulumi:S::P::TYPE::NAME`)."""
    return urn.rsplit("::", 1)[-1]


@dataclass
class EventReporter:
    """Turns engine events into progress lines for `label` (a target name) and collects the
    steps as changes. `planning` leaves out the `keep` steps from the lines (not from
    `changes`)."""

    label: str
    progress: Progress
    redactor: Redactor
    changes: list[Change] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def _say(self, text: str) -> None:
        self.progress(self.redactor.redact(f"{self.label}: {text}")[0])

    def __call__(self, event: EngineEvent) -> None:
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            if meta.type == _ROOT_STACK or meta.type.startswith("pulumi:providers:"):
                return
            op = meta.op.value if isinstance(meta.op, OpType) else str(meta.op)
            action, mark = _ACTIONS.get(op, (op, "?"))
            name = resource_name(meta.urn)
            detail = ", ".join(meta.diffs or []) if action in ("update", "replace") else ""
            self.changes.append(Change(action, f"{meta.type} {name}", detail))
            if action != "keep":
                self._say(f"{mark} {meta.type} {name} ({action}{': ' + detail if detail else ''})")
        elif event.res_op_failed_event is not None:
            meta = event.res_op_failed_event.metadata
            self._say(f"failed: {meta.type} {resource_name(meta.urn)}")
        elif event.diagnostic_event is not None:
            diagnostic = event.diagnostic_event
            if diagnostic.severity in ("warning", "error") and not diagnostic.ephemeral:
                text = self.redactor.redact(diagnostic.message.strip())[0]
                if diagnostic.severity == "error":
                    self.errors.append(text)
                where = f" {resource_name(diagnostic.urn)}" if diagnostic.urn else ""
                for line in text.splitlines():
                    self._say(f"{diagnostic.severity}{where}: {line}")
