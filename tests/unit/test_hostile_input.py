"""Hostile input through the real command line: each case is a clear exit-2 error (exit 1 when
the operation itself failed, such as a full disk) naming the file, key or flag; never a
traceback, never exit 70, never a hang. Cases that could hang or read without bound run the
installed `mcp-deploy` in a subprocess with a timeout; the others run in-process (`run_cli`).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.build.sources import select_sources
from orchestrator.errors import InputError, printable
from orchestrator.secret_refs import SecretRef
from orchestrator.secret_values import read_secrets
from orchestrator.spec.server import ServerSection
from tests.conftest import MINIMAL, CliResult

Run = Callable[..., CliResult]
Project = Callable[..., Path]
CLI = str(Path(sys.executable).with_name("mcp-deploy"))
TIMEOUT = 60
CANARY = "sk-canary-hostile-3b1f0c"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command in a subprocess, bounded by TIMEOUT (a hang fails the test)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MCP_DEPLOY_SPEC", "MCP_DEPLOY_DEBUG")}
    return subprocess.run(
        [CLI, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def assert_clear(code: int, err: str, expected: int = 2) -> None:
    assert code == expected, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert "\x1b" not in err, err


# -- the spec file -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "deep = " + "[" * 600 + "]" * 600,
        "deep = " + "{a = " * 500 + "1" + "}" * 500,
        ".".join(["k"] * 600) + " = 1",
        "[" + ".".join(["k"] * 600) + "]",
        "deep = " + "[" * 300 + "]" * 300,  # passed validate, then failed config explain
    ],
    ids=["arrays", "inline-tables", "dotted-keys", "table-header", "300-arrays"],
)
@pytest.mark.parametrize("command", [["validate"], ["config", "explain"]])
def test_deep_nesting_is_refused_with_its_line(
    run_cli: Run, project: Project, value: str, command: list[str]
) -> None:
    path = project(MINIMAL + "\n[smoke]\ntool = 'x'\n[smoke.arguments]\n" + value + "\n")
    result = run_cli("--spec", str(path), *command)
    assert_clear(result.code, result.err)
    assert f"{path}:10" in result.err and "nest more than 64 levels" in result.err


@pytest.mark.parametrize("key", ["source", "ignore_file", "entry"])
def test_very_long_paths_name_their_key(run_cli: Run, project: Project, key: str) -> None:
    if key == "entry":
        text = MINIMAL.replace("demo.app:app", "a" * 5000 + ".app:app")
    else:
        text = MINIMAL.replace("[server]\n", f'[server]\n{key} = "{"a" * 5000}"\n')
    result = run_cli("--spec", str(project(text)), "validate")
    assert_clear(result.code, result.err)
    assert f"server.{key}" in result.err


@pytest.mark.parametrize("key", ["source", "ignore_file"])
def test_nul_bytes_in_paths(run_cli: Run, project: Project, key: str) -> None:
    path = project(MINIMAL.replace("[server]\n", f'[server]\n{key} = "a\\u0000b"\n'))
    result = run_cli("--spec", str(path), "validate")
    assert_clear(result.code, result.err)
    assert f"server.{key}: contains a NUL byte" in result.err
    assert "\x00" not in result.err
    result = run_cli("--spec", "x\x00y", "validate")
    assert_clear(result.code, result.err)


@pytest.mark.parametrize("pattern", ["[z-a]", "\\\\", "!"])
@pytest.mark.parametrize("key", ["include", "exclude"])
def test_invalid_patterns_are_named(run_cli: Run, project: Project, pattern: str, key: str) -> None:
    path = project(MINIMAL.replace("[server]\n", f'[server]\n{key} = ["*.py", "{pattern}"]\n'))
    result = run_cli("--spec", str(path), "validate")
    assert_clear(result.code, result.err)
    assert f"server.{key}[1]" in result.err and "not a valid gitignore-style pattern" in result.err
    assert run_cli("--spec", str(path), "build", "--target", "lambda").code == 2


def test_ignore_file_problems_name_the_file(run_cli: Run, project: Project, tmp_path: Path) -> None:
    path = project(MINIMAL)
    ignore = tmp_path / ".mcpdeployignore"
    ignore.write_text("logs/\n[z-a]\n")
    result = run_cli("--spec", str(path), "validate")
    assert_clear(result.code, result.err)
    assert f"{ignore}:2: '[z-a]' is not a valid" in result.err
    ignore.write_bytes(b"logs/\n\xff\xfe\n")
    result = run_cli("--spec", str(path), "validate")
    assert_clear(result.code, result.err)
    assert "server.ignore_file" in result.err and "not UTF-8" in result.err
    ignore.write_bytes(b"#" * ((1 << 20) + 1))
    result = run_cli("--spec", str(path), "validate")
    assert_clear(result.code, result.err)
    assert "larger than 1 MiB" in result.err
    ignore.unlink()
    os.mkfifo(ignore)
    done = cli("--spec", str(path), "validate")
    assert_clear(done.returncode, done.stderr)
    assert "FIFO" in done.stderr


def test_a_file_name_that_is_not_utf8(run_cli: Run, project: Project, tmp_path: Path) -> None:
    path = project(MINIMAL)
    (tmp_path / os.fsdecode(b"demo/bad\xff\x1b[2J.py")).write_text("")
    for command in (["validate"], ["build", "--target", "lambda"]):
        result = run_cli("--spec", str(path), *command)
        assert_clear(result.code, result.err)
        assert "demo/bad\\xff\\x1b[2J.py' has a name that is not valid UTF-8" in result.err


def test_spec_that_is_a_device_a_fifo_or_too_large(tmp_path: Path) -> None:
    for device in ("/dev/zero", "/dev/null"):
        done = cli("--spec", device, "validate")
        assert_clear(done.returncode, done.stderr)
        assert f"{device}: cannot be read: is a device, not a regular file" in done.stderr
    fifo = tmp_path / "mcp-deploy.toml"
    os.mkfifo(fifo)
    done = cli("--spec", str(fifo), "validate")
    assert_clear(done.returncode, done.stderr)
    assert "is a FIFO (named pipe), not a regular file" in done.stderr
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    done = cli("--spec", str(big), "validate")
    assert_clear(done.returncode, done.stderr)
    assert "is larger than 1 MiB" in done.stderr


# -- secret files --------------------------------------------------------------------------------


def test_secret_files_that_are_fifos_devices_or_too_large(tmp_path: Path, project: Project) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big.txt").write_text(CANARY * 5000)
    path = project(
        MINIMAL
        + "[secrets.A]\n[secrets.B]\n[targets.lambda]\n[environments.local]\n"
        + 'secrets.MCP_AUTH_TOKEN = "file:fifo"\nsecrets.A = "file:/dev/zero"\n'
        + 'secrets.B = "file:big.txt"\n'
    )
    done = cli("--spec", str(path), "plan", "--target", "lambda")
    assert_clear(done.returncode, done.stderr)
    assert "environments.local.secrets.MCP_AUTH_TOKEN: cannot read" in done.stderr
    assert "FIFO" in done.stderr and "/dev/zero: is a device" in done.stderr
    assert "larger than 64 KiB" in done.stderr
    assert CANARY not in done.stdout + done.stderr
    assert not (tmp_path / ".mcp-deploy" / "store").exists(), "nothing may be built"


def test_read_secrets_bounds_every_read(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("x" * (64 << 10))
    (tmp_path / "big.txt").write_text("x" * ((64 << 10) + 1))
    assert read_secrets({"A": SecretRef("file", "ok.txt")}, tmp_path, "local")["A"]
    with pytest.raises(InputError, match="larger than 64 KiB"):
        read_secrets({"A": SecretRef("file", "big.txt")}, tmp_path, "local")
    with pytest.raises(InputError, match="is a directory"):
        read_secrets({"A": SecretRef("file", str(tmp_path))}, tmp_path, "local")


# -- the file system, the working directory, URLs ------------------------------------------------


def test_full_disk_is_exit_1_naming_the_file() -> None:
    done = cli("schema", "-o", "/dev/full")
    assert_clear(done.returncode, done.stderr, expected=1)
    assert "cannot write /dev/full: no space left on device" in done.stderr


def test_full_disk_anywhere_else_is_exit_1(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = Path.open

    def full(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "x" in mode:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", full)
    result = run_cli("init", str(tmp_path / "new"), "--name", "demo")
    assert_clear(result.code, result.err, expected=1)
    assert "no space left on the device" in result.err and str(tmp_path / "new") in result.err


def test_schema_into_a_missing_directory(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("schema", "-o", str(tmp_path / "missing" / "schema.json"))
    assert_clear(result.code, result.err)
    assert f"directory {tmp_path / 'missing'} does not exist" in result.err
    result = run_cli("schema", "-o", str(tmp_path / ("a" * 300)))
    assert_clear(result.code, result.err)


@pytest.mark.parametrize("command", ["validate", "init"])
def test_a_deleted_working_directory(tmp_path: Path, command: str) -> None:
    script = f'mkdir gone && cd gone && rmdir ../gone && exec "{CLI}" {command}'
    done = subprocess.run(
        ["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert_clear(done.returncode, done.stderr)
    assert "the current directory no longer exists" in done.stderr


@pytest.mark.parametrize("url", ["http://[::1", "ftp://x", "", "http://127.0.0.1:99999/mcp"])
def test_malformed_smoke_urls(run_cli: Run, url: str) -> None:
    result = run_cli("smoke", url)
    assert_clear(result.code, result.err)
    assert "error: URL:" in result.err


def test_deep_set_values_are_input_errors(run_cli: Run, project: Project) -> None:
    path = project(MINIMAL + "[targets.lambda]\n")
    result = run_cli("--spec", str(path), "config", "explain", "--set", "memory=" + "[" * 3000)
    assert_clear(result.code, result.err)


# -- what is echoed ------------------------------------------------------------------------------


def test_control_characters_are_escaped_once_where_issues_are_rendered(
    run_cli: Run, project: Project
) -> None:
    path = project(MINIMAL.replace("[server]\n", '[server]\nsource = "\\u001b[31mred\\u202e"\n'))
    result = run_cli("--spec", str(path), "validate")
    assert_clear(result.code, result.err)
    assert "'\\x1b[31mred\\u202e'" in result.err
    result = run_cli("\x1b]0;title\x07")  # click's own usage error echoes the argument
    assert_clear(result.code, result.err)
    assert "\\x1b]0;title\\x07" in result.err
    assert printable("plain text: ü, 😀") == "plain text: ü, 😀"
    path = project(MINIMAL + '[targets.lambda]\n[config]\nX = "[/bold] \\u001b[2J"\n')
    result = run_cli("--spec", str(path), "config", "explain")  # rich markup was read: exit 70
    assert result.code == 0 and "[/bold] \\x1b[2J" in result.out and "\x1b" not in result.out
    assert printable(os.fsdecode(b"\xff")) == "\\xff"


# -- symlinked code ------------------------------------------------------------------------------


def test_a_package_linked_from_outside_is_refused(
    run_cli: Run, project: Project, tmp_path: Path
) -> None:
    path = project(MINIMAL + "[targets.lambda]\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside" / "helpers"
    outside.mkdir(parents=True)
    (outside / "__init__.py").write_text("")
    (tmp_path / "helpers").symlink_to(outside, target_is_directory=True)
    (tmp_path / "inside").symlink_to(tmp_path / "demo", target_is_directory=True)
    for command in (["validate"], ["build", "--target", "lambda"]):
        result = run_cli("--spec", str(path), *command)
        assert_clear(result.code, result.err)
        assert f"'helpers' is a link to the directory {outside}, outside" in result.err
        assert "copy the package into the source directory, or vendor it" in result.err
        assert "'inside'" not in result.err  # a link that stays inside works as before
    with pytest.raises(InputError, match="helpers"):
        select_sources(tmp_path, ServerSection(name="x", entry="demo.app:app"))
    server = ServerSection(name="x", entry="demo.app:app", exclude=["helpers"])
    assert "demo/app.py" in select_sources(tmp_path, server)


# -- a small fuzz run (the 10,000-input run is bench/fuzz_cli.py) ---------------------------------


def test_small_fuzz_run_meets_the_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.fuzz_cli import Tally, closed_loopback_port, phases, workspace

    monkeypatch.delenv("MCP_DEPLOY_SPEC", raising=False)
    monkeypatch.delenv("MCP_DEPLOY_DEBUG", raising=False)
    spec = workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    tally = Tally()
    counts = {"documents": 40, "mutations": 50, "text": 40, "raw": 20, "argv": 50}
    for phase, run in phases(tally, spec, closed_loopback_port(), seed=7).items():
        run(counts[phase])
    assert sum(sum(c.values()) for c in tally.codes.values()) >= 150
    assert tally.misses == [], [printable(str(miss)) for miss in tally.misses[:3]]
