"""The local Workers runner's pure pieces: the bundle metadata's checks, Cap'n Proto escaping,
the generated workerd config, the names and Host it presents, and `problem`. (The config is
proven against workerd itself in tests/integration/test_workers_local.py.)"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.artifacts import Artifact
from targets.base import LocalLaunch
from targets.workers import WorkersOptions
from targets.workers.local import presented_host, problem, script_name
from targets.workers.workerd import NEWEST_COMPATIBILITY_DATE, WORKERD_VERSION, failure_line
from targets.workers.workerd_config import (
    EDGE_SERVICE,
    WorkerBundle,
    capnp_string,
    config_text,
    const_name,
    module_name_ok,
    text_bindings,
)

CANARY = "canary-7d41c2e9-secret"


def launch_for(tmp_path: Path, options: WorkersOptions, server: str) -> LocalLaunch:
    artifact = Artifact("workers-bundle", "workers", "sha256:" + "0" * 64, 1, "x", tmp_path)
    return LocalLaunch(
        server=server,
        environment="local",
        python="3.12",
        artifact=artifact,
        options=options,
        mcp_path="/mcp",
        variables={},
        secrets={},
        state_dir=tmp_path,
        runtime="node",
    )


def metadata(**changes: Any) -> bytes:
    document: dict[str, Any] = {
        "main_module": "worker.mjs",
        "modules": [
            {"name": "lib/words.txt", "type": "text"},
            {"name": "worker.mjs", "type": "esm"},
            {"name": "empty.wasm", "type": "wasm"},
        ],
        "compatibility_date": "2025-09-01",
        "compatibility_flags": ["nodejs_compat"],
    }
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


def test_metadata_is_parsed_main_module_first() -> None:
    bundle = WorkerBundle.from_json(metadata())
    assert bundle.main_module == "worker.mjs"
    assert [m.name for m in bundle.modules] == ["worker.mjs", "lib/words.txt", "empty.wasm"]
    assert bundle.compatibility_date == dt.date(2025, 9, 1)
    assert bundle.compatibility_flags == ("nodejs_compat",)


def test_metadata_as_the_node_packager_writes_it() -> None:
    """`targets.workers.package_node` adds `format` and `runtime`; flags may be left out."""
    bundle = WorkerBundle.from_json(metadata(format=1, runtime="node", compatibility_flags=None))
    assert bundle.compatibility_flags == ()


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"extra": 1}, "unknown key 'extra'"),
        ({"format": 2}, "format 2"),
        ({"runtime": "python"}, "runtime 'python'"),
        ({"main_module": "other.mjs"}, "main_module must name"),
        ({"main_module": "lib/words.txt"}, "must be of type 'esm'"),
        ({"modules": []}, "non-empty list"),
        ({"modules": [{"name": "worker.mjs", "type": "python"}]}, "type must be one of"),
        ({"modules": [{"name": "worker.mjs"}]}, '{"name": ..., "type": ...}'),
        ({"modules": [{"name": "worker.mjs", "type": "esm"}] * 2}, "listed twice"),
        ({"compatibility_date": "2025-9-1"}, "YYYY-MM-DD"),
        ({"compatibility_date": "2025-02-30"}, "is not a date"),
        ({"compatibility_flags": ["nodejs compat"]}, "snake_case"),
        ({"compatibility_flags": "nodejs_compat"}, "snake_case"),
    ],
)
def test_bad_metadata_is_refused_saying_why(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        WorkerBundle.from_json(metadata(**changes))


def test_not_json_is_refused() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        WorkerBundle.from_json(b"{")
    with pytest.raises(ValueError, match="not a JSON object"):
        WorkerBundle.from_json(b"[]")


@pytest.mark.parametrize(
    "name", ["../x.mjs", "/abs.mjs", "a//b.mjs", ".hidden.mjs", "a/./b", "a\\b.mjs", "a b", ""]
)
def test_module_names_are_plain_relative_paths(name: str) -> None:
    assert not module_name_ok(name)
    with pytest.raises(ValueError, match="not a plain relative path"):
        WorkerBundle.from_json(metadata(modules=[{"name": name, "type": "esm"}], main_module=name))


def test_module_names_may_nest() -> None:
    assert module_name_ok("node_modules/@scope/pkg-1.2/index+x_y.mjs")


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("two\nlines\ttab\r", '"two\\x0alines\\x09tab\\x0d"'),
        ("é€", '"\\xc3\\xa9\\xe2\\x82\\xac"'),
        ("nul\x00del\x7f", '"nul\\x00del\\x7f"'),
        ("", '""'),
    ],
)
def test_capnp_strings_are_escaped(value: str, literal: str) -> None:
    assert capnp_string(value) == literal
    assert all(0x20 <= ord(c) < 0x7F for c in literal)  # printable ASCII only: no \u, no raw


def test_undecodable_text_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as raised:
        capnp_string(CANARY + "\udc80")
    assert CANARY not in str(raised.value)


def _config(bindings: list[tuple[str, str]], host: str = "echo-local.x.workers.dev") -> str:
    bundle = WorkerBundle.from_json(metadata())
    return config_text("mcpDeployAbc", "echo-local", bundle, bindings, host, 0)


def test_config_serves_one_worker_behind_the_edge() -> None:
    text = _config([("GREETING", "hi")])
    assert "const mcpDeployAbc :Workerd.Config = (" in text
    assert 'address = "127.0.0.1:0"' in text and f'service = "{EDGE_SERVICE}"' in text
    modules = re.findall(r'\(name = "([^"]+)", (\w+) = embed "([^"]+)"\)', text)
    assert modules == [
        ("worker.mjs", "esModule", "/worker.mjs"),
        ("lib/words.txt", "text", "/lib/words.txt"),
        ("empty.wasm", "wasm", "/empty.wasm"),
    ]
    assert 'compatibilityDate = "2025-09-01"' in text
    assert 'compatibilityFlags = ["nodejs_compat"]' in text
    assert '(name = "HOST", text = "echo-local.x.workers.dev")' in text
    assert '(name = "WORKER", service = "echo-local")' in text


def test_the_workers_outbound_network_adds_loopback_to_the_internet() -> None:
    from targets.workers.workerd_config import OUTBOUND_SERVICE

    text = _config([])
    assert (
        f'(name = "{OUTBOUND_SERVICE}", network = (allow = ["public", "127.0.0.0/8", "::1/128"]))'
        in text
    )
    assert text.count(f'globalOutbound = "{OUTBOUND_SERVICE}"') == 1  # the Worker's, not the edge's
    bundle = WorkerBundle.from_json(metadata())
    with pytest.raises(ValueError, match="edge"):
        config_text("mcpDeployAbc", OUTBOUND_SERVICE, bundle, [], "h", 0)


def test_binding_names_and_values_are_escaped() -> None:
    text = _config([('WEIRD"NAME', 'a "b"\nc\\'), ("API_KEY", CANARY)])
    assert '(name = "WEIRD\\"NAME", text = "a \\"b\\"\\x0ac\\\\")' in text
    # The secret is in its binding and nowhere else (the config is never written to disk).
    assert text.count(CANARY) == 1
    assert f'(name = "API_KEY", text = "{CANARY}")' in text


def test_config_refuses_duplicate_bindings_and_the_edge_name() -> None:
    with pytest.raises(ValueError, match="unique"):
        _config([("A", "1"), ("A", "2")])
    bundle = WorkerBundle.from_json(metadata())
    with pytest.raises(ValueError, match="edge"):
        config_text("mcpDeployAbc", EDGE_SERVICE, bundle, [], "h", 0)


def test_text_bindings_are_config_then_secrets() -> None:
    assert text_bindings({"B": "2", "A": "1"}, {"Z": "s", "C": "t"}) == [
        ("A", "1"),
        ("B", "2"),
        ("C", "t"),
        ("Z", "s"),
    ]
    with pytest.raises(ValueError, match="TOKEN is both") as raised:
        text_bindings({"TOKEN": "x"}, {"TOKEN": CANARY})
    assert CANARY not in str(raised.value)


def test_const_name_is_a_stable_capnp_identifier() -> None:
    name = const_name(Path("/p/.mcp-deploy/state/local/workers"))
    assert re.fullmatch(r"mcpDeploy[0-9a-f]{24}", name)
    assert name == const_name(Path("/p/.mcp-deploy/state/local/workers"))
    assert name != const_name(Path("/q/.mcp-deploy/state/local/workers"))


def test_script_names_follow_the_cloud_program() -> None:
    """The rules of stacks/workers.py `script_name` (not imported: targets never import
    stacks)."""
    assert script_name("Echo_Server", "local") == "echo-server-local"
    long = script_name("s" * 70, "dev")
    assert len(long) == 63 and re.fullmatch(r"s{54}-[0-9a-f]{8}", long)


def test_the_host_is_a_workers_dev_name(tmp_path: Path) -> None:
    launch = launch_for(tmp_path, WorkersOptions(account_id="0" * 32), server="echo")
    host = presented_host(launch)
    assert re.fullmatch(r"echo-local\.[a-z2-7]{10}\.workers\.dev", host), host
    other = launch_for(tmp_path, WorkersOptions(account_id="1" * 32), server="echo")
    assert presented_host(other) != host


def test_problem_explains_a_date_beyond_workerd() -> None:
    assert problem(WorkersOptions(compatibility_date=dt.date(2025, 9, 1)), "node") is None
    later = NEWEST_COMPATIBILITY_DATE + dt.timedelta(days=1)
    if later > dt.date.today():
        pytest.skip("the options refuse a future date")
    found = problem(WorkersOptions(compatibility_date=later), "node")
    assert found is not None and found.option == "compatibility_date"
    assert WORKERD_VERSION in found.message and NEWEST_COMPATIBILITY_DATE.isoformat() in found.hint


def test_problem_refuses_python_workers() -> None:
    found = problem(WorkersOptions(compatibility_flags=["python_workers"]))
    assert found is not None and "cannot start offline" in found.message


def test_failure_line_is_workerds_own() -> None:
    output = "worker says hi\nservice echo: Uncaught SyntaxError: Unexpected token '}'\n  at x\n"
    assert failure_line(output) == "service echo: Uncaught SyntaxError: Unexpected token '}'"
    taken = 'Socket "http": bind(): Address already in use (os error 98)'
    assert failure_line(taken) == taken
    assert failure_line("nothing to see") is None
