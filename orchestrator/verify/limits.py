"""What a target's platform cannot do, measured on its local emulation: a scenario that fails
there for that reason alone is reported `unsupported on <target>: <reason>`, not failed.

Only real platform limits belong here, each one seen failing on the emulation while the same
server passes run directly and on the other targets (docs/verify.md). With a known target
(verify --target, the deploy gate) such a scenario is not run (it would only wait out the
platform's timeouts: a minute each) but reported `unsupported` at once (`not_run`); one run
anyway (named with --scenario) is marked when it failed or warned (`apply_limits`). `verify
URL` knows no target and reports what it sees.
"""

from __future__ import annotations

from orchestrator.verify.conformance import ScenarioResult

# A server's own requests to the client during a tool call (sampling, elicitation) reach
# the client on an SSE stream: the standalone one (GET) or the tool call's POST response.
# On Lambda neither can carry them: mcp-deploy answers GET 405 there (an invocation cannot
# hold a stream open) and the Web Adapter buffers each response until the invocation ends,
# while the tool waits for the answer: the call times out. Measured with the suite's
# reference server: these four pass run directly and on Cloud Run.
_SERVER_REQUESTS = (
    "no SSE stream reaches the client while a tool runs (responses are buffered; GET is "
    "answered 405), so the server's own request (sampling, elicitation) never arrives"
)
# target -> scenario -> why the platform cannot pass it
LIMITS: dict[str, dict[str, str]] = {
    "lambda": {
        "tools-call-sampling": _SERVER_REQUESTS,
        "tools-call-elicitation": _SERVER_REQUESTS,
        "elicitation-sep1034-defaults": _SERVER_REQUESTS,
        "elicitation-sep1330-enums": _SERVER_REQUESTS,
    },
}


def not_run(names: list[str], target: str | None) -> tuple[list[str], list[ScenarioResult]]:
    """(the scenarios of `names` to run, the results of those `target` cannot pass)."""
    known = LIMITS.get(target or "", {})
    skipped = [
        ScenarioResult(name, "unsupported", note=f"not run: unsupported on {target}: {known[name]}")
        for name in names
        if name in known
    ]
    return [name for name in names if name not in known], skipped


def apply_limits(results: list[ScenarioResult], target: str | None) -> None:
    """Mark the results of `target` that hit one of its platform's limits (in place)."""
    known = LIMITS.get(target or "", {})
    for result in results:
        reason = known.get(result.name)
        if reason and result.status in ("failed", "warning"):
            result.status = "unsupported"
            result.note = f"unsupported on {target}: {reason}"
