"""What `verify` found: the conformance scenarios run (or skipped, with why), the auth
discovery chain, and one overall status.

Overall: `failed` when a scenario failed, the chain failed, or the server could not be
initialized with the credentials given; `warning` when something warned or could not be
tested (an OAuth server and no access token); else `passed`. `unsupported` scenarios (a
platform limit, `limits`) count as neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.verify.conformance import ScenarioResult
from orchestrator.verify.discovery import AuthChain
from orchestrator.verify.scenarios import Skipped


@dataclass
class VerifyReport:
    url: str
    target: str | None
    suite: dict[str, str]
    auth: AuthChain
    server: dict[str, Any] = field(default_factory=dict)
    scenarios: list[ScenarioResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # why the server could not be initialized with the credentials given ('' when it was)
    problem: str = ""
    hint: str = ""
    incomplete: str = ""  # why the conformance scenarios could not run at all ('' when they ran)
    seconds: float = 0.0

    @property
    def status(self) -> str:
        found = {result.status for result in self.scenarios}
        if self.problem or "failed" in found or self.auth.status == "failed":
            return "failed"
        if self.incomplete or "warning" in found or self.auth.status == "warning":
            return "warning"
        return "passed"

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def counts(self) -> dict[str, int]:
        out = {"passed": 0, "warning": 0, "failed": 0, "unsupported": 0}
        for result in self.scenarios:
            out[result.status] = out.get(result.status, 0) + 1
        out["skipped"] = len(self.skipped)
        return out

    def failure_lines(self) -> list[str]:
        """One line per failure (for an error message: the deploy gate)."""
        lines = [self.problem] if self.problem else []
        for result in self.scenarios:
            if result.status == "failed":
                first = result.failures[0] if result.failures else None
                detail = f": {first.message or first.description}" if first else ""
                lines.append(f"{result.name} failed{detail}")
        if self.auth.status == "failed":
            bad = [s for s in self.auth.steps if s.status == "FAILURE"]
            lines.extend(f"auth {s.id}: {s.message or s.description}" for s in bad)
        return lines

    def summary(self) -> str:
        counts = self.counts()
        parts = [f"{counts['passed']} passed"]
        parts += [f"{counts[k]} {k}" for k in ("warning", "failed", "unsupported") if counts[k]]
        parts.append(f"{counts['skipped']} not applicable")
        return f"conformance {', '.join(parts)}; auth: {self.auth.summary or self.auth.status}" + (
            f"; {self.incomplete}" if self.incomplete else ""
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status,
            "url": self.url,
            "target": self.target,
            "seconds": round(self.seconds, 2),
            "suite": self.suite,
            "server": self.server,
            "problem": self.problem or None,
            "hint": self.hint or None,
            "incomplete": self.incomplete or None,
            "counts": self.counts(),
            "scenarios": [result.to_dict() for result in self.scenarios],
            "skipped": [skip.to_dict() for skip in self.skipped],
            "auth": self.auth.to_dict(),
        }
