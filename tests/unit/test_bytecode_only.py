"""`bytecode_only`: a compiled dependency tree turned into bytecode only (`sourceless`).

Compiles with this interpreter's Python (its minor version is always found: it is running)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.build.bytecode import cache_tag, compile_tree, place_sourceless, sourceless
from targets.aws_lambda import LambdaOptions
from targets.cloudrun import CloudRunOptions

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
PREFIX = "/var/task"


def dependency_tree(root: Path) -> Path:
    """A small vendored tree as `vendor` leaves it: sources, __pycache__ pycs, other files."""
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("from pkg.mod import VALUE\n")
    (root / "pkg" / "mod.py").write_text("VALUE = 42\n\ndef fail():\n    raise ValueError('x')\n")
    (root / "pkg" / "sub" / "__init__.py").write_text("")
    (root / "pkg" / "template.py").write_text("def {{ name }}(:\n")  # does not compile
    (root / "pkg" / "data.json").write_text('{"a": 1}\n')
    (root / "pkg" / "py.typed").write_text("")
    (root / "pkg-1.0.dist-info").mkdir()
    (root / "pkg-1.0.dist-info" / "METADATA").write_text("Name: pkg\nVersion: 1.0\n")
    (root / "pkg-1.0.dist-info" / "RECORD").write_text("pkg/__init__.py,,\n")
    (root / "extra.pth").write_text("import sys\n")
    (root / "single.py").write_text("NAME = 'single'\n")
    compile_tree(root, python=PYTHON, prefix=PREFIX, strict=False)
    return root


def files(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def converted(tmp_path: Path) -> Path:
    source = dependency_tree(tmp_path / "site")
    sourceless(source, tmp_path / "out", python=PYTHON, prefix=PREFIX)
    return tmp_path / "out"


def test_sources_dropped_only_where_a_pyc_exists(converted: Path) -> None:
    assert sorted(files(converted)) == [
        "extra.pth",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/RECORD",
        "pkg/__init__.pyc",
        "pkg/data.json",
        "pkg/mod.pyc",
        "pkg/py.typed",
        "pkg/sub/__init__.pyc",
        "pkg/template.py",  # did not compile: kept as it was
        "single.pyc",
    ]
    assert not list(converted.rglob("__pycache__"))


def test_the_source_tree_is_left_alone(tmp_path: Path) -> None:
    source = dependency_tree(tmp_path / "site")
    before = files(source)
    sourceless(source, tmp_path / "out", python=PYTHON, prefix=PREFIX)
    assert files(source) == before


def test_sourceless_modules_import_and_report_their_recorded_paths(converted: Path) -> None:
    probe = (
        "import json, pkg, pkg.mod, pkg.sub, single, importlib.resources as r\n"
        "print(json.dumps([pkg.VALUE, pkg.mod.__file__.endswith('pkg/mod.pyc'), single.NAME,\n"
        "    r.files('pkg').joinpath('data.json').read_text(), pkg.mod.fail.__code__.co_filename]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=converted,
        env={"PYTHONPATH": str(converted), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == '[42, true, "single", "{\\"a\\": 1}\\n", "/var/task/pkg/mod.py"]'


def test_a_traceback_through_a_dependency_names_file_and_line(converted: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import pkg.mod\npkg.mod.fail()"],
        cwd=converted,
        env={"PYTHONPATH": str(converted)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert 'File "/var/task/pkg/mod.py", line 4, in fail' in done.stderr
    assert "raise ValueError" not in done.stderr  # no source line to show
    assert "ValueError: x" in done.stderr


def test_deterministic(tmp_path: Path) -> None:
    one = dependency_tree(tmp_path / "one")
    two = dependency_tree(tmp_path / "two")
    sourceless(one, tmp_path / "out-one", python=PYTHON, prefix=PREFIX)
    sourceless(two, tmp_path / "out-two", python=PYTHON, prefix=PREFIX)
    assert files(tmp_path / "out-one") == files(tmp_path / "out-two")


def test_bytecode_without_debug_ranges(converted: Path) -> None:
    """The pycs carry line numbers but no column ranges (smaller; nothing to underline)."""
    import marshal

    code = marshal.loads((converted / "pkg" / "mod.pyc").read_bytes()[16:])
    fail = next(c for c in code.co_consts if hasattr(c, "co_positions"))
    positions = list(fail.co_positions())
    assert any(line == 4 for line, _, _, _ in positions)
    assert all(column is None for _, _, column, _ in positions)


def test_place_sourceless_ignores_pycs_of_other_tags(tmp_path: Path) -> None:
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "a.py").write_text("")
    (tmp_path / "__pycache__" / "a.cpython-30.pyc").write_bytes(b"old")
    place_sourceless(tmp_path, cache_tag(PYTHON))
    assert sorted(files(tmp_path)) == ["a.py"]


def test_cache_tag() -> None:
    assert cache_tag(PYTHON) == sys.implementation.cache_tag
    assert cache_tag("3.12") == "cpython-312"


def test_the_option_shapes_the_artifact() -> None:
    for model in (LambdaOptions, CloudRunOptions):
        assert "bytecode_only" in model.build_fields
        assert model().bytecode_only is False


def test_record_lists_only_the_files_kept(tmp_path: Path) -> None:
    """A console script's RECORD line carries the installing interpreter's path (its shebang):
    removing `bin/` removes the line too, so a vendored set does not depend on that path."""
    from orchestrator.build.vendor import _strip

    site = tmp_path / "site"
    (site / "bin").mkdir(parents=True)
    (site / "bin" / "idna").write_text("#!/somewhere/python\n")
    (site / "idna").mkdir()
    (site / "idna" / "core.py").write_text("x = 1\n")
    (site / "odd, name.py").write_text("y = 2\n")
    info = site / "idna-3.20.dist-info"
    info.mkdir()
    record = (
        "bin/idna,sha256=abc,301\n"
        "idna/core.py,sha256=def,6\n"
        '"odd, name.py",sha256=ghi,6\n'
        "idna-3.20.dist-info/RECORD,,\n"
    )
    (info / "RECORD").write_text(record)
    _strip(site)
    assert not (site / "bin").exists()
    assert (info / "RECORD").read_text() == record.replace("bin/idna,sha256=abc,301\n", "")
