"""What a Linux executable needs to run: its CPU, whether it is static, the shared libraries
it links and the newest glibc symbol version it asks for (read with pyelftools).

`inspect_executable` reads `server.binary`; `needs_problems` compares it with what a base
offers (an image's libraries and glibc, or Lambda's provided.al2023), so a build refuses an
executable that would fail at start-up with "error while loading shared libraries" in the
cloud, before anything ships.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import IO, Any, cast

from orchestrator.errors import input_error

# e_machine as pyelftools names it -> the architecture as Lambda names it.
_MACHINES = {"EM_X86_64": "x86_64", "EM_AARCH64": "arm64"}
_GLIBC = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.\d+)?$")
# The glibc libraries: present wherever glibc is, so never "missing" from a glibc base.
GLIBC_LIBRARIES = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libdl.so.2",
        "libpthread.so.0",
        "librt.so.1",
        "libresolv.so.2",
        "libutil.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
    }
)


@dataclass(frozen=True)
class Executable:
    """One ELF executable as far as running it goes.

    `arch` is "x86_64" or "arm64"; `static` means no program interpreter and no shared
    library (it runs from an empty image); `needed` lists DT_NEEDED sonames in file order;
    `glibc` is the newest `GLIBC_x.y` symbol version it requires (None: none)."""

    path: Path
    arch: str
    static: bool
    interpreter: str | None
    needed: tuple[str, ...]
    glibc: tuple[int, int] | None
    size: int

    @property
    def linkage(self) -> str:
        """'static' or 'dynamic (glibc 2.34, libgcc_s.so.1, ...)' for messages."""
        if self.static:
            return "static"
        glibc = f"glibc {self.glibc[0]}.{self.glibc[1]}" if self.glibc else "glibc"
        others = [name for name in self.needed if name not in GLIBC_LIBRARIES]
        return "dynamic (" + ", ".join([glibc, *others]) + ")"


def inspect_executable(path: Path, where: str) -> Executable:
    """Read `path` (named by spec key `where` in errors). `InputError` when it is missing,
    not an ELF executable, not 64-bit little-endian x86_64/arm64, or unreadable."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise input_error(
            where,
            f"{path} does not exist",
            "build it first (set server.build to the command that produces it), or fix the path",
        ) from None
    except OSError as error:
        raise input_error(where, f"{path} cannot be read: {error.strerror}") from None
    if not data.startswith(b"\x7fELF"):
        found = "a script" if data.startswith(b"#!") else "not an ELF file"
        raise input_error(
            where,
            f"{path} is {found}, not a Linux executable",
            "point server.binary at the compiled server (for example target/release/<name>), "
            "built for Linux",
        )
    try:
        elf = ELFFile(BytesIO(data))
        return _read(elf, path, len(data), where)
    except ELFError as error:
        raise input_error(where, f"{path} is not a readable ELF executable: {error}") from None


def _read(elf: Any, path: Path, size: int, where: str) -> Executable:
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.gnuversions import GNUVerNeedSection

    header = elf.header
    if elf.elfclass != 64 or not elf.little_endian:
        raise input_error(where, f"{path} is not a 64-bit little-endian executable")
    arch = _MACHINES.get(header["e_machine"])
    if arch is None:
        raise input_error(
            where,
            f"{path} is built for {header['e_machine'].removeprefix('EM_')}, which Lambda and "
            "Cloud Run do not run",
            "build it for x86_64 or aarch64 Linux",
        )
    if header["e_type"] not in ("ET_EXEC", "ET_DYN"):
        raise input_error(where, f"{path} is an ELF {header['e_type']} file, not an executable")
    interpreter = None
    for segment in elf.iter_segments():
        if segment["p_type"] == "PT_INTERP":
            interpreter = segment.get_interp_name()
    needed: list[str] = []
    glibc: tuple[int, int] | None = None
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            needed.extend(cast(Any, tag).needed for tag in section.iter_tags("DT_NEEDED"))
        elif isinstance(section, GNUVerNeedSection):
            for _entry, auxiliaries in section.iter_versions():
                glibc = _newest(glibc, (aux.name for aux in auxiliaries))
    static = interpreter is None and not needed
    return Executable(path, arch, static, interpreter, tuple(needed), glibc, size)


def _newest(current: tuple[int, int] | None, names: Iterable[str]) -> tuple[int, int] | None:
    for name in names:
        match = _GLIBC.match(name)
        if match is not None:
            version = (int(match.group(1)), int(match.group(2)))
            if current is None or version > current:
                current = version
    return current


def glibc_provided(library: IO[bytes]) -> tuple[int, int] | None:
    """The newest `GLIBC_x.y` version a libc.so.6 defines (its own glibc version); None
    when the file is not a glibc libc."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerDefSection

    newest: tuple[int, int] | None = None
    try:
        for section in ELFFile(library).iter_sections():
            if isinstance(section, GNUVerDefSection):
                for _entry, auxiliaries in section.iter_versions():
                    newest = _newest(newest, (aux.name for aux in auxiliaries))
    except ELFError:
        return None
    return newest


@dataclass(frozen=True)
class Provided:
    """What a base offers a dynamic executable: library sonames and its glibc version
    (None: no glibc at all, e.g. an empty image)."""

    name: str
    libraries: frozenset[str]
    glibc: tuple[int, int] | None


def needs_problems(executable: Executable, base: Provided) -> list[str]:
    """Why `executable` would not start on `base` (empty: it would)."""
    if executable.static:
        return []
    problems: list[str] = []
    if base.glibc is None:
        return [f"{base.name} has no glibc, and the executable is {executable.linkage}"]
    if executable.glibc is not None and executable.glibc > base.glibc:
        need, have = executable.glibc, base.glibc
        problems.append(
            f"it needs glibc {need[0]}.{need[1]} and {base.name} has glibc {have[0]}.{have[1]}"
        )
    missing = [
        name
        for name in executable.needed
        if name not in base.libraries and name not in GLIBC_LIBRARIES
    ]
    if missing:
        problems.append(f"{base.name} lacks {', '.join(missing)}")
    return problems
