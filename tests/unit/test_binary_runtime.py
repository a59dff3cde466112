"""`server.runtime = "binary"` without building anything: the spec's keys and refusals, the
ELF inspection of real executables on this machine, what a base offers, the refusals of the
packagers before any artifact is written, and `init --runtime binary`."""

from __future__ import annotations

import io
import shutil
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator.build.elf import (
    Executable,
    Provided,
    glibc_provided,
    inspect_executable,
    needs_problems,
)
from orchestrator.errors import InputError, SpecError
from orchestrator.scaffold import BinaryServer, guess_binary, scaffold
from orchestrator.spec.loader import load_spec
from targets.aws_lambda.package_binary import PROVIDED_AL2023
from targets.cloudrun.base_glibc import image_offers
from tests.conftest import CliResult

STATIC = Path("/usr/local/go/bin/go")  # Go's own toolchain binary: static
DYNAMIC = Path(shutil.which("ls") or "/usr/bin/ls")  # glibc, libselinux
LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")

BINARY_SPEC = """\
[server]
name = "rusty"
runtime = "binary"
binary = "server"

[secrets.MCP_AUTH_TOKEN]

[targets.lambda]
[targets.cloudrun]
"""


def messages(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return [f"{issue.where}: {issue.message}" for issue in caught.value.issues]


def test_a_binary_spec_loads(project: Callable[..., Path]) -> None:
    spec_path = project(BINARY_SPEC)
    (spec_path.parent / "server").write_bytes(b"\x7fELF")
    server = load_spec(spec_path).spec.server
    assert (server.runtime, server.binary, server.build) == ("binary", "server", None)


def test_a_binary_needs_its_path_and_refuses_python_keys(project: Callable[..., Path]) -> None:
    text = BINARY_SPEC.replace('binary = "server"', 'entry = "demo.app:app"\ntransport = "stdio"')
    found = messages(project(text))
    assert any(m.startswith('server.binary: runtime = "binary" needs') for m in found)
    assert any(m.startswith('server.entry: entry is for runtime = "python"') for m in found)
    assert any(m.startswith("server.transport:") for m in found)


def test_workers_is_refused_for_a_binary_naming_the_table(project: Callable[..., Path]) -> None:
    spec_path = project(BINARY_SPEC + "[targets.workers]\n")
    (spec_path.parent / "server").write_bytes(b"\x7fELF")
    (message,) = messages(spec_path)
    assert message.startswith("server.runtime: Cloudflare Workers (targets.workers) does not run")


def test_a_missing_binary_without_build_is_named(project: Callable[..., Path]) -> None:
    (message,) = messages(project(BINARY_SPEC))
    assert message.startswith("server.binary: 'server' in ") and "does not exist" in message


def test_a_missing_binary_with_build_is_fine_until_the_build(project: Callable[..., Path]) -> None:
    text = BINARY_SPEC.replace('binary = "server"', 'binary = "server"\nbuild = ["make"]')
    assert load_spec(project(text)).spec.server.build == ["make"]


@pytest.mark.parametrize("path", ["/abs/server", "../outside", "a/../../b"])
def test_the_binary_lives_in_the_source_directory(project: Callable[..., Path], path: str) -> None:
    found = messages(project(BINARY_SPEC.replace('"server"', f'"{path}"')))
    assert any("must be a path inside the source directory" in m for m in found)


def test_a_python_server_refuses_binary_keys(project: Callable[..., Path]) -> None:
    text = '[server]\nname = "p"\nentry = "demo.app:app"\nbuild = ["make"]\n'
    text += "[secrets.MCP_AUTH_TOKEN]\n"
    (message,) = messages(project(text))
    assert message.startswith('server.build: build is for runtime = "binary"')


def test_a_static_executable() -> None:
    found = inspect_executable(STATIC, "server.binary")
    assert found.static and found.interpreter is None and found.needed == ()
    assert found.arch == "x86_64" and found.linkage == "static"
    assert needs_problems(found, Provided("scratch", frozenset(), None)) == []


def test_a_dynamic_executable_names_its_needs() -> None:
    found = inspect_executable(DYNAMIC, "server.binary")
    assert not found.static and "libc.so.6" in found.needed
    assert found.glibc is not None and found.glibc >= (2, 2)
    assert found.linkage.startswith("dynamic (glibc ")
    problems = needs_problems(found, PROVIDED_AL2023)
    assert problems == ["Lambda's provided.al2023 runtime lacks libselinux.so.1"]
    assert needs_problems(found, Provided("scratch", frozenset(), None)) == [
        f"scratch has no glibc, and the executable is {found.linkage}"
    ]


def test_a_newer_glibc_than_the_base_has_is_refused() -> None:
    wants = Executable(Path("x"), "x86_64", False, "/lib64/ld", ("libc.so.6",), (2, 38), 1)
    (problem,) = needs_problems(wants, PROVIDED_AL2023)
    assert problem == "it needs glibc 2.38 and Lambda's provided.al2023 runtime has glibc 2.34"


def test_non_executables_are_refused_with_the_fix(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(InputError) as caught:
        inspect_executable(script, "server.binary")
    assert "is a script, not a Linux executable" in caught.value.issues[0].message
    with pytest.raises(InputError) as missing:
        inspect_executable(tmp_path / "nothing", "server.binary")
    assert missing.value.issues[0].where == "server.binary"


def test_the_cpu_is_read_from_the_header(tmp_path: Path) -> None:
    arm = tmp_path / "arm"
    data = bytearray(STATIC.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # e_machine = EM_AARCH64
    arm.write_bytes(bytes(data))
    assert inspect_executable(arm, "server.binary").arch == "arm64"
    data[18:20] = (40).to_bytes(2, "little")  # EM_ARM
    arm.write_bytes(bytes(data))
    with pytest.raises(InputError) as caught:
        inspect_executable(arm, "server.binary")
    assert "built for ARM" in caught.value.issues[0].message


def test_glibc_version_comes_from_libc_itself() -> None:
    with LIBC.open("rb") as library:
        assert glibc_provided(library) == (2, 36)  # Debian 12


def layer_with(tmp_path: Path, files: dict[str, Path | str]) -> Path:
    """A tar layer holding `files`: a path on disk, or a symbolic link's target."""
    layer = tmp_path / f"layer{len(list(tmp_path.iterdir()))}.tar"
    with tarfile.open(layer, "w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                archive.addfile(info)
            else:
                data = content.read_bytes()
                info.size, info.mode = len(data), stat.S_IMODE(0o755)
                archive.addfile(info, io.BytesIO(data))
    return layer


def test_what_a_base_offers_is_read_from_its_layers(tmp_path: Path) -> None:
    gcc = Path("/lib/x86_64-linux-gnu/libgcc_s.so.1")
    first = layer_with(
        tmp_path,
        {
            "lib/x86_64-linux-gnu/libc.so.6": LIBC,
            "usr/lib/x86_64-linux-gnu/libgcc_s.so.1": gcc,
            "usr/lib/x86_64-linux-gnu/libselinux.so.1": gcc,
        },
    )
    second = layer_with(
        tmp_path,
        {"usr/lib/x86_64-linux-gnu/.wh.libselinux.so.1": gcc, "etc/passwd": gcc},
    )
    offers = image_offers("the base", [first, second])
    assert offers.glibc == (2, 36)
    assert {"libc.so.6", "libgcc_s.so.1"} <= offers.libraries
    assert "libselinux.so.1" not in offers.libraries  # removed by the second layer
    ls = inspect_executable(DYNAMIC, "server.binary")
    assert needs_problems(ls, offers) == ["the base lacks libselinux.so.1"]


def test_init_recognises_cargo_and_go_projects(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "weather"\n[[bin]]\nname = "wx"\n')
    assert guess_binary(tmp_path) == BinaryServer(
        "target/release/wx", ["cargo", "build", "--release", "--locked"]
    )
    (tmp_path / "Cargo.toml").unlink()
    (tmp_path / "go.mod").write_text("module example.com/acme/weather\n\ngo 1.22\n")
    guessed = guess_binary(tmp_path)
    assert guessed is not None and guessed.binary == "bin/weather"
    assert guessed.build is not None and guessed.build[-3:] == ["-o", "bin/weather", "."]
    (tmp_path / "go.mod").unlink()
    assert guess_binary(tmp_path) is None


def test_init_writes_a_binary_spec_that_validates(tmp_path: Path) -> None:
    made = scaffold(tmp_path, "weather", binary=BinaryServer("bin/weather", None))
    (spec_path,) = made.files
    text = spec_path.read_text()
    assert "# build = [...]" in text  # no build command: commented out
    (tmp_path / "bin").mkdir()
    shutil.copyfile(STATIC, tmp_path / "bin" / "weather")
    server = load_spec(spec_path).spec.server
    assert (server.runtime, server.binary, server.build) == ("binary", "bin/weather", None)


def test_init_runtime_binary_on_the_command_line(
    tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    unknown = run_cli("init", str(tmp_path / "a"), "--runtime", "binary")
    assert unknown.code == 2
    assert "no Cargo.toml or go.mod" in unknown.err and "--binary" in unknown.err
    given = run_cli(
        "init", str(tmp_path / "b"), "--runtime", "binary", "--binary", "out/srv", "--build",
        "make srv",
    )  # fmt: skip
    assert given.code == 0, given.err
    text = (tmp_path / "b" / "mcp-deploy.toml").read_text()
    assert 'binary = "out/srv"' in text and 'build = ["make", "srv"]' in text
    misplaced = run_cli("init", str(tmp_path / "c"), "--binary", "x")
    assert misplaced.code == 2 and "--binary goes with --runtime binary" in misplaced.err


def test_a_native_addon_for_another_cpu_or_node_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.build import node_app
    from orchestrator.build.npm import NodeToolchain

    modules = tmp_path / "node_modules"
    addon = modules / "fast" / "build" / "Release" / "fast.node"
    addon.parent.mkdir(parents=True)
    shutil.copyfile(LIBC, addon)  # a real x86_64 shared object stands in for an addon
    plain = modules / "fast" / "index.js"
    plain.write_text("module.exports = require('./build/Release/fast.node')\n")
    files = [addon, plain]
    monkeypatch.setattr(
        node_app, "node_toolchain", lambda: NodeToolchain("node", "npm", "v22.23.5")
    )
    node_app.check_native_addons(modules, files, "x86_64", "22")  # loads where it runs
    node_app.check_native_addons(modules, [plain], "arm64", "20")  # no addon, no question
    with pytest.raises(InputError) as cpu:
        node_app.check_native_addons(modules, files, "arm64", "22")
    assert "node_modules/fast/build/Release/fast.node is a native addon built for x86_64" in (
        cpu.value.issues[0].message
    )
    with pytest.raises(InputError) as abi:
        node_app.check_native_addons(modules, files, "x86_64", "20")
    assert "Node.js 22; server.node is 20" in abi.value.issues[0].message


def test_lambda_local_gives_up_a_chosen_port_another_process_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.errors import OperationError
    from targets.aws_lambda import local
    from targets.base import LocalHandle

    ports: list[int] = []

    def start(launch: Any, function: Any, port: int) -> LocalHandle:
        ports.append(port)
        if len(ports) == 1:
            raise OperationError("... [Errno 98] error while ...: address already in use")
        return LocalHandle(url=f"http://127.0.0.1:{port}/mcp", data={})

    monkeypatch.setattr(local, "function_of", lambda launch: None)
    monkeypatch.setattr(local, "_start_supervisor", start)
    free = iter([40001, 40002])
    monkeypatch.setattr(local, "_free_port", lambda: next(free))
    launch = SimpleNamespace(port=0)
    assert local.start_background(launch).url == "http://127.0.0.1:40002/mcp"  # type: ignore[arg-type]
    assert ports == [40001, 40002]
    ports.clear()
    with pytest.raises(OperationError):  # a port the caller asked for is never swapped
        local.start_background(SimpleNamespace(port=40003))  # type: ignore[arg-type]
    assert ports == [40003]
