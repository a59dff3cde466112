"""Which of the conformance suite's server scenarios apply to a given server, and why not.

Every server scenario of `@modelcontextprotocol/conformance` 0.1.16 (`conformance list`) is
in RULES, with what it needs to mean something:

- nothing: `server-initialize`, `ping`, `dns-rebinding-protection` (through verify's proxy it
  tests the deployment's Origin validation, which every HTTP server must do);
- a capability the server advertises in its initialize result: `tools-list` (tools),
  `resources-list` (resources), `prompts-list` (prompts), `logging-set-level` (logging);
  a server without one answers its list method with -32601, rightly;
- a session: `server-sse-multiple-streams` opens concurrent streams in one Mcp-Session-Id;
  a stateless server only gets a warning from it;
- one of the suite's own fixtures (a tool, prompt, resource or template the suite's reference
  server has, by name): the `tools-call-*`, `prompts-get-*`, `resources-read-*` and the like.
  These run only when the server lists that very fixture, because without it they pass
  falsely (`tools-call-simple-text` accepts the "Unknown tool" error text as its answer) or
  fail for no fault of the server. A real server has none of them; the suite's reference
  servers have them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.verify.probe import ServerFacts


@dataclass(frozen=True)
class Rule:
    """What scenario `name` needs: a capability (`capability`, or `capability.sub`), a
    session, and/or a fixture of the suite (`kind` tool | prompt | resource | template)."""

    name: str
    capability: str | None = None
    session: bool = False
    fixture: tuple[str, str] | None = None


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


def _tool(name: str, fixture: str) -> Rule:
    return Rule(name, capability="tools", fixture=("tool", fixture))


def _prompt(name: str, fixture: str) -> Rule:
    return Rule(name, capability="prompts", fixture=("prompt", fixture))


RULES: tuple[Rule, ...] = (
    Rule("server-initialize"),
    Rule("ping"),
    Rule("tools-list", capability="tools"),
    Rule("resources-list", capability="resources"),
    Rule("prompts-list", capability="prompts"),
    Rule("logging-set-level", capability="logging"),
    Rule("dns-rebinding-protection"),
    Rule("server-sse-multiple-streams", session=True),
    Rule(
        "completion-complete",
        capability="completions",
        fixture=("prompt", "test_prompt_with_arguments"),
    ),
    _tool("tools-call-simple-text", "test_simple_text"),
    _tool("tools-call-image", "test_image_content"),
    _tool("tools-call-audio", "test_audio_content"),
    _tool("tools-call-embedded-resource", "test_embedded_resource"),
    _tool("tools-call-mixed-content", "test_multiple_content_types"),
    _tool("tools-call-with-logging", "test_tool_with_logging"),
    _tool("tools-call-error", "test_error_handling"),
    _tool("tools-call-with-progress", "test_tool_with_progress"),
    _tool("tools-call-sampling", "test_sampling"),
    _tool("tools-call-elicitation", "test_elicitation"),
    _tool("elicitation-sep1034-defaults", "test_elicitation_sep1034_defaults"),
    _tool("elicitation-sep1330-enums", "test_elicitation_sep1330_enums"),
    _tool("json-schema-2020-12", "json_schema_2020_12_tool"),
    _tool("server-sse-polling", "test_reconnection"),
    Rule("resources-read-text", "resources", fixture=("resource", "test://static-text")),
    Rule("resources-read-binary", "resources", fixture=("resource", "test://static-binary")),
    Rule(
        "resources-templates-read",
        "resources",
        fixture=("template", "test://template/{id}/data"),
    ),
    Rule(
        "resources-subscribe",
        "resources.subscribe",
        fixture=("resource", "test://watched-resource"),
    ),
    Rule(
        "resources-unsubscribe",
        "resources.subscribe",
        fixture=("resource", "test://watched-resource"),
    ),
    _prompt("prompts-get-simple", "test_simple_prompt"),
    _prompt("prompts-get-with-args", "test_prompt_with_arguments"),
    _prompt("prompts-get-embedded-resource", "test_prompt_with_embedded_resource"),
    _prompt("prompts-get-with-image", "test_prompt_with_image"),
)
BY_NAME = {rule.name: rule for rule in RULES}


def _advertises(facts: ServerFacts, capability: str) -> bool:
    top, _, sub = capability.partition(".")
    value = facts.capabilities.get(top)
    if value is None:
        return False
    return not sub or (isinstance(value, dict) and bool(value.get(sub)))


def _offers(facts: ServerFacts, kind: str, name: str) -> bool:
    listed = {
        "tool": facts.tools,
        "prompt": facts.prompts,
        "resource": facts.resources,
        "template": facts.templates,
    }[kind]
    return name in listed


def why_not(rule: Rule, facts: ServerFacts) -> str | None:
    """Why `rule`'s scenario does not apply to the server (None: it applies)."""
    if rule.capability is not None and not _advertises(facts, rule.capability):
        return f"the server does not advertise the {rule.capability} capability"
    if rule.session and not facts.stateful:
        return "the server keeps no sessions (no Mcp-Session-Id): the scenario tests streams of one"
    if rule.fixture is not None and not _offers(facts, *rule.fixture):
        kind, name = rule.fixture
        return (
            f"it calls the suite's fixture {kind} {name}, which the server does not offer "
            "(without it the scenario's result means nothing)"
        )
    return None


def plan(facts: ServerFacts, only: list[str] | None = None) -> tuple[list[str], list[Skipped]]:
    """(scenarios to run, in RULES order; the others, each with its reason). `only`: run just
    these (by name; each must be in RULES), still skipping those that do not apply."""
    run: list[str] = []
    skipped: list[Skipped] = []
    for rule in RULES:
        if only is not None and rule.name not in only:
            continue
        reason = why_not(rule, facts)
        if reason is None:
            run.append(rule.name)
        else:
            skipped.append(Skipped(rule.name, reason))
    return run, skipped
