"""The platform's lines in a local Lambda function's log, worded as CloudWatch shows them.

INIT_START and EXTENSION lines come from `init_phase.py` and `extensions_api.py`; START, END,
REPORT, INIT_REPORT, timeouts and invocation errors from here.
"""

from __future__ import annotations

import time

from targets.aws_lambda.runtime_api import Outcome


def start_line(request_id: str) -> str:
    return f"START RequestId: {request_id} Version: $LATEST"


def end_lines(
    request_id: str, duration_ms: float, memory: int, used: int | None, init_ms: float | None
) -> str:
    """END and REPORT (durations in ms, `memory` the memory size, `used` the peak in MB)."""
    line = (
        f"END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: "
        f"{max(1, int(duration_ms + 0.999))} ms\tMemory Size: {memory} MB\t"
        f"Max Memory Used: {used if used is not None else '?'} MB"
    )
    if init_ms is not None:
        line += f"\tInit Duration: {init_ms:.2f} ms"
    if used is not None and used > memory:
        line += "\tWARNING: above the memory size (Lambda would end it: Runtime.OutOfMemory)"
    return line


def init_report_line(init_ms: float, error_type: str) -> str:
    """INIT_REPORT of a failed init (`Runtime.InitTimeout`: status timeout)."""
    head = f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\t"
    if error_type == "Runtime.InitTimeout":
        return head + "Status: timeout"
    return head + f"Status: error\tError Type: {error_type}"


def timeout_line(request_id: str, timeout: float) -> str:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    return f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds"


def error_line(request_id: str, outcome: Outcome) -> str:
    return f"RequestId: {request_id} Error: {error_message(outcome)}"


def error_type(outcome: Outcome) -> str:
    """The `errorType` of a failure outcome (Runtime.Unknown when it names none)."""
    try:
        return str(outcome.json().get("errorType", "Runtime.Unknown"))
    except (ValueError, AttributeError):
        return outcome.error_type or "Runtime.Unknown"


def error_message(outcome: Outcome) -> str:
    try:
        return str(outcome.json().get("errorMessage", ""))
    except (ValueError, AttributeError):
        return outcome.body.decode(errors="replace")[:500]
