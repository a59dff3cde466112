"""The Lambda Web Adapter layer of the local Lambda emulation: where it is cached, and the
errors a user sees when it cannot be built (cargo missing, cargo failing)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator.errors import OperationError
from targets.aws_lambda import web_adapter
from targets.base import host_architecture


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MCP_DEPLOY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_layer_is_cached_per_version_and_architecture(cache: Path) -> None:
    expected = f"{web_adapter.WEB_ADAPTER_VERSION}-{host_architecture()}"
    assert web_adapter.layer_directory() == cache / "lambda-web-adapter" / expected
    # The wrapper AWS's layer puts at /opt/bootstrap, byte for byte.
    assert web_adapter.WRAPPER == '#!/bin/bash\n\nexec -- "${LAMBDA_TASK_ROOT}/${_HANDLER}"'
    assert (web_adapter.WEB_ADAPTER_VERSION, web_adapter.LAYER_VERSION) == ("0.9.1", 25)


def test_without_cargo_the_error_says_how_to_get_it(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("CARGO_HOME", str(empty))
    heard: list[str] = []
    with pytest.raises(OperationError) as caught:
        web_adapter.web_adapter_layer(heard.append)
    assert "cargo is not installed" in caught.value.message
    assert caught.value.hint is not None and "rustup" in caught.value.hint
    assert heard == []
    assert not web_adapter.layer_directory().exists()


@pytest.mark.skipif(shutil.which("cargo") is None, reason="needs cargo")
def test_a_failed_build_shows_cargos_output_and_leaves_nothing(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real failure: cargo offline, with a registry cache of its own that is empty."""
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "cargo-home"))
    monkeypatch.setenv("CARGO_NET_OFFLINE", "true")
    heard: list[str] = []
    with pytest.raises(OperationError) as caught:
        web_adapter.web_adapter_layer(heard.append)
    assert "building AWS Lambda Web Adapter 0.9.1" in caught.value.message
    assert caught.value.detail is not None and "lambda_web_adapter" in caught.value.detail
    assert heard == [
        "building AWS Lambda Web Adapter 0.9.1 from crates.io (once per machine, ~1.5 min)"
    ]
    parent = web_adapter.layer_directory().parent
    assert sorted(path.name for path in parent.iterdir()) == [
        f".{web_adapter.layer_directory().name}.lock"
    ]
