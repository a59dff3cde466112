"""Which conformance scenarios apply (capabilities, sessions, the suite's fixtures), what the
suite's checks.json says, the platform limits, and the initialize probe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from orchestrator.verify.conformance import (
    Check,
    ScenarioResult,
    parse_checks,
    read_result,
    scenario_status,
)
from orchestrator.verify.limits import LIMITS, apply_limits, not_run
from orchestrator.verify.probe import ProbeError, ServerFacts, parse_reply, probe
from orchestrator.verify.scenarios import BY_NAME, RULES, plan

# `conformance list` of @modelcontextprotocol/conformance 0.1.16 (server scenarios).
SUITE_SERVER_SCENARIOS = [
    "server-initialize",
    "logging-set-level",
    "ping",
    "completion-complete",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-logging",
    "tools-call-error",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "json-schema-2020-12",
    "elicitation-sep1034-defaults",
    "server-sse-polling",
    "server-sse-multiple-streams",
    "elicitation-sep1330-enums",
    "resources-list",
    "resources-read-text",
    "resources-read-binary",
    "resources-templates-read",
    "resources-subscribe",
    "resources-unsubscribe",
    "prompts-list",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
    "dns-rebinding-protection",
]


def test_every_server_scenario_of_the_suite_has_a_rule() -> None:
    assert sorted(BY_NAME) == sorted(SUITE_SERVER_SCENARIOS)
    assert len(RULES) == len(BY_NAME)


def test_a_server_with_tools_only() -> None:
    facts = ServerFacts(capabilities={"tools": {}}, tools=["add", "greet"])
    run, skipped = plan(facts)
    assert run == ["server-initialize", "ping", "tools-list", "dns-rebinding-protection"]
    reasons = {skip.name: skip.reason for skip in skipped}
    assert reasons["resources-list"] == "the server does not advertise the resources capability"
    assert "test_simple_text" in reasons["tools-call-simple-text"]
    assert "no sessions" in reasons["server-sse-multiple-streams"]
    assert len(run) + len(skipped) == len(RULES)


def test_the_reference_server_gets_every_scenario() -> None:
    fixtures: dict[str, list[str]] = {"tool": [], "prompt": [], "resource": [], "template": []}
    for rule in RULES:
        if rule.fixture:
            fixtures[rule.fixture[0]].append(rule.fixture[1])
    facts = ServerFacts(
        capabilities={
            "tools": {},
            "prompts": {},
            "resources": {"subscribe": True},
            "logging": {},
            "completions": {},
        },
        stateful=True,
        tools=fixtures["tool"],
        prompts=fixtures["prompt"],
        resources=fixtures["resource"],
        templates=fixtures["template"],
    )
    run, skipped = plan(facts)
    assert skipped == [] and run == [rule.name for rule in RULES]


def test_subscribe_needs_the_sub_capability() -> None:
    facts = ServerFacts(
        capabilities={"resources": {"subscribe": False}}, resources=["test://watched-resource"]
    )
    _, skipped = plan(facts)
    reasons = {skip.name: skip.reason for skip in skipped}
    assert "resources.subscribe" in reasons["resources-subscribe"]


def test_only_narrows_the_plan_and_still_skips() -> None:
    run, skipped = plan(ServerFacts(), only=["ping", "tools-list"])
    assert run == ["ping"]
    assert [skip.name for skip in skipped] == ["tools-list"]


def check(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "x", "name": "X", "description": "d", "status": status, **extra}


def test_parse_checks_drops_info_and_keeps_messages() -> None:
    found = parse_checks(
        [check("INFO"), check("SUCCESS"), check("FAILURE", errorMessage="boom"), check("WARNING")]
    )
    assert [c.status for c in found] == ["SUCCESS", "FAILURE", "WARNING"]
    assert found[1].message == "boom"
    assert scenario_status(found) == "failed"
    assert scenario_status(found[::2]) == "warning"
    assert scenario_status(found[:1]) == "passed"


@pytest.mark.parametrize("document", [{}, [1], [{"status": "MAYBE"}]])
def test_parse_checks_refuses_what_is_not_checks(document: Any) -> None:
    with pytest.raises(ValueError):
        parse_checks(document)


def test_read_result(tmp_path: Path) -> None:
    run = tmp_path / "server-ping-2026-01-01T00-00-00-000Z"
    run.mkdir()
    (run / "checks.json").write_text(json.dumps([check("SUCCESS")]))
    assert read_result("ping", tmp_path, 0, "").status == "passed"


def test_read_result_without_checks_is_a_failure(tmp_path: Path) -> None:
    result = read_result("ping", tmp_path, 1, "x" * 5000)
    assert result.status == "failed"
    assert result.checks[0].id == "suite" and len(result.checks[0].message) == 1500


def test_read_result_with_a_bad_file_or_only_info(tmp_path: Path) -> None:
    run = tmp_path / "server-ping-1"
    run.mkdir()
    (run / "checks.json").write_text("{not json")
    assert read_result("ping", tmp_path, 0, "").status == "failed"
    (run / "checks.json").write_text(json.dumps([check("INFO")]))
    assert read_result("ping", tmp_path, 1, "").status == "failed"
    assert read_result("ping", tmp_path, 0, "").status == "passed"


def test_limits_are_known_scenarios() -> None:
    for limits in LIMITS.values():
        assert set(limits) <= set(BY_NAME)


def test_a_platform_limit_is_not_run_and_reported_unsupported() -> None:
    names = ["ping", "tools-call-sampling"]
    run, unsupported = not_run(names, "lambda")
    assert run == ["ping"]
    assert unsupported[0].status == "unsupported"
    assert unsupported[0].note.startswith("not run: unsupported on lambda: ")
    assert not_run(names, "cloudrun") == (names, [])
    assert not_run(names, None) == (names, [])


def test_apply_limits_marks_only_failures_on_that_target() -> None:
    failed = ScenarioResult("tools-call-sampling", "failed", [Check("x", "FAILURE")])
    passed = ScenarioResult("tools-call-elicitation", "passed")
    apply_limits([failed, passed], "lambda")
    assert failed.status == "unsupported" and failed.note.startswith("unsupported on lambda")
    assert passed.status == "passed"
    other = ScenarioResult("tools-call-sampling", "failed")
    apply_limits([other], "cloudrun")
    assert other.status == "failed"


def test_parse_reply_json_and_sse() -> None:
    reply = {"jsonrpc": "2.0", "id": 3, "result": {"ok": True}}
    assert parse_reply("application/json", json.dumps(reply), 3) == reply
    assert parse_reply("application/json", json.dumps([{"x": 1}, reply]), 3) == reply
    sse = f"id: 1\nretry: 5\ndata: \n\nevent: message\ndata: {json.dumps(reply)}\n\n"
    assert parse_reply("text/event-stream; charset=utf-8", sse, 3) == reply
    assert parse_reply("text/event-stream", "data: {broken\n\n", 3) is None
    assert parse_reply("application/json", "nope", 3) is None
    assert parse_reply("application/json", json.dumps(reply), 4) is None


def mcp_server(
    capabilities: dict[str, Any], *, session: str | None = None, status: int = 200
) -> httpx2.MockTransport:
    seen: list[str] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.method == "DELETE":
            seen.append("DELETE")
            return httpx2.Response(200)
        body = json.loads(request.content)
        seen.append(body["method"])
        assert request.headers["authorization"] == "Bearer t0k"
        if status != 200:
            return httpx2.Response(status, json={"error": "no"})
        if "id" not in body:
            return httpx2.Response(202)
        results: dict[str, Any] = {
            "initialize": {
                "protocolVersion": "2025-11-25",
                "capabilities": capabilities,
                "serverInfo": {"name": "s", "version": "1"},
            },
            "tools/list": {"tools": [{"name": "test_simple_text"}, {"nameless": 1}]},
            "prompts/list": {"prompts": [{"name": "p"}]},
            "resources/list": {"resources": [{"uri": "test://static-text"}]},
        }
        if body["method"] not in results:
            reply = {"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32601}}
        else:
            reply = {"jsonrpc": "2.0", "id": body["id"], "result": results[body["method"]]}
        headers = {"mcp-session-id": session} if session else {}
        return httpx2.Response(200, json=reply, headers=headers)

    transport = httpx2.MockTransport(handle)
    transport.seen = seen  # type: ignore[attr-defined]
    return transport


def test_probe_reads_capabilities_and_lists() -> None:
    transport = mcp_server({"tools": {}, "prompts": {}, "resources": {}}, session="abc")
    facts = probe("https://x.example/mcp", "t0k", transport=transport)
    assert facts.name == "s" and facts.stateful
    assert facts.tools == ["test_simple_text"] and facts.prompts == ["p"]
    assert facts.resources == ["test://static-text"] and facts.templates == []
    assert transport.seen == [  # type: ignore[attr-defined]
        "initialize",
        "notifications/initialized",
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
        "DELETE",
    ]
    assert facts.to_dict()["capabilities"] == ["prompts", "resources", "tools"]


def test_probe_says_why_it_could_not_initialize() -> None:
    with pytest.raises(ProbeError) as raised:
        probe("https://x.example/mcp", "t0k", transport=mcp_server({}, status=401))
    assert raised.value.status == 401 and "HTTP 401" in raised.value.message
    assert "t0k" not in raised.value.message
