"""Archives, source selection, requirements discovery, wheel errors, references, store."""

from __future__ import annotations

import gzip
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.build.archive import Entry, write_tar_layer, write_zip
from orchestrator.build.sources import select_sources
from orchestrator.build.store import ArtifactStore
from orchestrator.build.vendor import _missing_wheel, find_requirements
from orchestrator.errors import InputError, SpecError
from orchestrator.oci.reference import Reference
from orchestrator.spec.loader import load_spec
from orchestrator.spec.server import ServerSection
from tests.conftest import MINIMAL

CANARY = "canary-value-0d9f"


def entries() -> list[Entry]:
    return [
        Entry("b/two.py", data=b"2"),
        Entry("a.py", data=b"1"),
        Entry("run", data=b"#!", executable=True),
    ]


def test_zip_is_byte_identical_whatever_the_order(tmp_path: Path) -> None:
    write_zip(entries(), tmp_path / "one.zip")
    write_zip(list(reversed(entries())), tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        infos = {info.filename: info for info in archive.infolist()}
    assert list(infos) == ["a.py", "b/two.py", "run"]
    assert infos["run"].external_attr >> 16 == 0o100755
    assert infos["a.py"].date_time == (1980, 1, 1, 0, 0, 0)


def test_zip_honours_source_date_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    write_zip(entries(), tmp_path / "e.zip")
    with zipfile.ZipFile(tmp_path / "e.zip") as archive:
        assert archive.infolist()[0].date_time == (2023, 11, 14, 22, 13, 20)


def test_duplicate_entries_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        write_zip([Entry("a", data=b""), Entry("a", data=b"")], tmp_path / "d.zip")


def test_tar_layer_is_reproducible_with_root_owned_entries(tmp_path: Path) -> None:
    one = write_tar_layer(entries(), tmp_path / "one.tgz", epoch=0)
    two = write_tar_layer(list(reversed(entries())), tmp_path / "two.tgz", epoch=0)
    assert (one.digest, one.diff_id) == (two.digest, two.diff_id)
    raw = gzip.decompress((tmp_path / "one.tgz").read_bytes())
    import hashlib

    assert one.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    with tarfile.open(tmp_path / "one.tgz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["b", "a.py", "b/two.py", "run"]
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, 0)}


def test_sources_leave_out_secrets_caches_and_the_spec(tmp_path: Path) -> None:
    files = {
        "app/main.py": "x",
        "app/.env": CANARY,
        ".env.prod": CANARY,
        "key.pem": CANARY,
        ".git/config": "",
        ".venv/lib/x.py": "",
        "app/__pycache__/m.pyc": "",
        "mcp-deploy.toml": "",
        "notes/todo.txt": "",
        "logs/a.log": "",
        "README.md": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / ".mcpdeployignore").write_text("logs/\n")
    server = ServerSection(name="x", entry="app.main:app", exclude=["notes/"])
    assert list(select_sources(tmp_path, server)) == ["README.md", "app/main.py"]
    only_app = ServerSection(name="x", entry="app.main:app", include=["app/"])
    assert list(select_sources(tmp_path, only_app)) == ["app/main.py"]


def test_a_link_out_of_the_source_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "outside.txt").write_text(CANARY)
    (tmp_path / "src" / "link.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(InputError, match="link"):
        select_sources(tmp_path / "src", ServerSection(name="x", entry="a:b"))


def test_requirements_from_requirements_txt_and_pyproject(tmp_path: Path) -> None:
    assert find_requirements(tmp_path) is None
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\ndependencies=["mcp==2.3.0"]\n')
    found = find_requirements(tmp_path)
    assert found is not None and found.lines == ("mcp==2.3.0",)
    (tmp_path / "requirements.txt").write_text("# pinned\nmcp==2.3.0  # the SDK\n\nanyio==4.16.0\n")
    found = find_requirements(tmp_path)
    assert found is not None and found.lines == ("mcp==2.3.0", "anyio==4.16.0")
    assert found.origin.name == "requirements.txt"


@pytest.mark.parametrize(
    ("output", "name"),
    [
        (
            "  cause: Because docopt==0.6.2 has no usable wheels and you require docopt==0.6.2, we",
            "docopt",
        ),
        (
            "Because all versions of docopt have no usable wheels and you require docopt, we",
            "docopt",
        ),
        (
            "hint: Wheels are required for `psycopg2` because building from source is disabled",
            "psycopg2",
        ),
    ],
)
def test_missing_wheel_errors_name_package_and_platform(output: str, name: str) -> None:
    error = _missing_wheel(output, "aarch64-manylinux2014", "3.12")
    assert error is not None
    assert (
        error.message
        == f"package '{name}' has no binary wheel for aarch64-manylinux2014, Python 3.12"
    )
    assert error.hint and "arch" in error.hint
    assert _missing_wheel("network is unreachable", "x", "3.12") is None


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "scheme"),
    [
        ("127.0.0.1:5000/python:3.11", "127.0.0.1:5000", "python", "3.11", "http"),
        ("localhost:5000/a/b", "localhost:5000", "a/b", None, "http"),
        (
            "europe-west1-docker.pkg.dev/p/r/img:v1",
            "europe-west1-docker.pkg.dev",
            "p/r/img",
            "v1",
            "https",
        ),
    ],
)
def test_references(
    text: str, registry: str, repository: str, tag: str | None, scheme: str
) -> None:
    reference = Reference.parse(text)
    assert (reference.registry, reference.repository, reference.tag) == (registry, repository, tag)
    assert reference.scheme == scheme
    assert str(reference) == text
    pinned = reference.with_digest("sha256:" + "a" * 64)
    assert str(pinned).endswith("@sha256:" + "a" * 64) and pinned.reference.startswith("sha256:")


@pytest.mark.parametrize("text", ["python:3.11", "127.0.0.1:5000/x@sha256:abc"])
def test_bad_references(text: str) -> None:
    with pytest.raises(ValueError):
        Reference.parse(text)


def test_store_is_content_addressed_and_an_oci_layout(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    digest, size = store.add_bytes(b"hello")
    assert store.add_bytes(b"hello") == (digest, size)
    assert store.blob_path(digest).read_bytes() == b"hello"
    store.tag_image("toolbox", digest, "application/vnd.oci.image.manifest.v1+json", size)
    store.tag_image("toolbox", digest, "application/vnd.oci.image.manifest.v1+json", size)
    import json

    index = json.loads((tmp_path / "store" / "index.json").read_text())
    assert len(index["manifests"]) == 1
    assert (tmp_path / "store" / "oci-layout").is_file()


def test_build_options_cannot_vary_by_environment(project: Callable[..., Path]) -> None:
    text = MINIMAL + '\n[targets.lambda]\nregion = "eu-west-1"\n'
    text += '[environments.dev]\ntargets.lambda.arch = "x86_64"\n'
    with pytest.raises(SpecError) as caught:
        load_spec(project(text))
    (issue,) = caught.value.issues
    assert issue.where == "environments.dev.targets.lambda.arch"
    assert "same in every environment" in issue.message


def test_size_limits_are_checked_before_and_after_compressing(tmp_path: Path) -> None:
    from orchestrator.build.archive import SizeLimits, write_zip_within
    from orchestrator.errors import OperationError

    big = [Entry("a.bin", data=bytes(range(256)) * 64)]  # 16 KiB, barely compressible
    limits = SizeLimits("the package", "Lambda allows", 1024, 10**9, "make it smaller")
    with pytest.raises(OperationError, match=r"^the package would be 16.0 KiB uncompressed"):
        write_zip_within(big, tmp_path / "a.zip", limits)
    assert not (tmp_path / "a.zip").exists()
    limits = SizeLimits("the package", "Lambda allows", 10**9, 100, "make it smaller", " here")
    with pytest.raises(OperationError, match=r"compressed; Lambda allows 0.1 KiB here$"):
        write_zip_within(big, tmp_path / "b.zip", limits)
