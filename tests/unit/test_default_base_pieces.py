"""The pure pieces behind the default Cloud Run base: mirror settings, the lock file, and
reading a base image's Python from its config or its layers' file lists."""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

from orchestrator.build.lockfile import (
    HEADER,
    LOCK_FILE,
    dumps,
    lock_path,
    lock_table,
    read_lock,
    update_lock,
)
from orchestrator.build.sources import select_sources
from orchestrator.errors import InputError
from orchestrator.oci.mirrors import (
    ENV,
    Mirror,
    mirrors_from_env,
    normalized,
    parse_mirrors,
    source_of,
)
from orchestrator.oci.reference import Reference
from orchestrator.scaffold import DEFAULT_PYTHON, host_python
from orchestrator.spec.server import PYTHON_VERSIONS, ServerSection
from targets.cloudrun.base_image import default_base
from targets.cloudrun.base_python import (
    Detected,
    FileEntry,
    PythonCache,
    image_python,
    layer_entries,
    minor_from_config,
    minor_from_files,
)

DIGEST = "sha256:" + "ab" * 32
DEBIAN_PATH = "/usr/local/bin:/usr/bin:/bin"

# -- mirrors ---------------------------------------------------------------------------------


def test_mirrors_parse_hosts_ports_and_prefixes() -> None:
    mirrors = parse_mirrors(" docker.io=127.0.0.1:5000/hub , ghcr.io=mirror.example.com ,")
    assert mirrors == {
        "docker.io": Mirror("127.0.0.1:5000", "hub"),
        "ghcr.io": Mirror("mirror.example.com", ""),
    }
    assert str(mirrors["docker.io"]) == "127.0.0.1:5000/hub"
    assert parse_mirrors("") == {}
    assert parse_mirrors("index.docker.io=localhost:5000/a/b/") == {
        "docker.io": Mirror("localhost:5000", "a/b")
    }


@pytest.mark.parametrize(
    "text",
    [
        "docker.io",
        "docker.io=",
        "=127.0.0.1:5000",
        "docker.io=http://127.0.0.1:5000",
        "docker.io=127.0.0.1:5000/Hub",
        "docker.io=a:1,registry-1.docker.io=b:2",
    ],
)
def test_malformed_mirrors_are_refused_with_the_form(text: str) -> None:
    with pytest.raises(ValueError, match="'"):
        parse_mirrors(text)


def test_the_environment_variable_is_bad_input_when_malformed() -> None:
    assert mirrors_from_env({ENV: "docker.io=127.0.0.1:5000/hub"}) == {
        "docker.io": Mirror("127.0.0.1:5000", "hub")
    }
    assert mirrors_from_env({}) == {}
    with pytest.raises(InputError) as caught:
        mirrors_from_env({ENV: "docker.io"})
    (issue,) = caught.value.issues
    assert issue.where == ENV and issue.hint and "REGISTRY=HOST" in issue.hint


def test_a_mirrored_reference_reads_from_the_mirror_keeping_tag_and_digest() -> None:
    mirrors = parse_mirrors("docker.io=127.0.0.1:5000/hub")
    tagged = Reference.parse(default_base("3.11"))
    assert str(source_of(tagged, mirrors)) == "127.0.0.1:5000/hub/library/python:3.11-slim"
    assert source_of(tagged, mirrors).scheme == "http"
    pinned = tagged.with_digest(DIGEST)
    assert str(source_of(pinned, mirrors)) == f"127.0.0.1:5000/hub/library/python@{DIGEST}"
    unprefixed = parse_mirrors("docker.io=127.0.0.1:5000")
    assert str(source_of(tagged, unprefixed)) == "127.0.0.1:5000/library/python:3.11-slim"


def test_docker_hub_is_read_from_its_api_host_and_other_registries_as_named() -> None:
    hub = source_of(Reference.parse("docker.io/python:3.12-slim"), {})
    assert str(hub) == "registry-1.docker.io/library/python:3.12-slim"
    assert hub.scheme == "https"
    other = Reference.parse(f"127.0.0.1:5000/python@{DIGEST}")
    assert source_of(other, parse_mirrors("docker.io=127.0.0.1:6000")) == other
    assert str(normalized(Reference.parse("index.docker.io/library/python:3.12"))) == (
        "docker.io/library/python:3.12"
    )


def test_the_default_base_is_the_official_slim_image_of_the_minor() -> None:
    assert default_base("3.12") == "docker.io/library/python:3.12-slim"


# -- lock file -------------------------------------------------------------------------------


def test_lock_round_trip_keeps_other_tables_and_has_the_header(tmp_path: Path) -> None:
    path = lock_path(tmp_path / "mcp-deploy.toml")
    assert path == tmp_path / LOCK_FILE
    assert read_lock(path) == {} and lock_table(path, ("targets", "cloudrun", "base")) is None
    update_lock(path, ("other", "thing"), {"value": "kept", "count": 2, "on": True})
    entry = {
        "reference": "docker.io/library/python:3.12-slim",
        "digest": DIGEST,
        "python": "3.12",
        "resolved_at": "2026-11-25T10:00:00Z",
    }
    update_lock(path, ("targets", "cloudrun", "base"), entry)
    text = path.read_text()
    assert text.startswith(HEADER)
    assert "generated" in HEADER and "Commit it" in HEADER and "--update-base" in HEADER
    assert "[targets.cloudrun.base]" in text
    assert lock_table(path, ("targets", "cloudrun", "base")) == entry
    assert lock_table(path, ("other", "thing")) == {"value": "kept", "count": 2, "on": True}
    assert read_lock(path)["version"] == 1
    assert not list(tmp_path.glob(".*")), "no temporary file is left behind"


def test_lock_strings_survive_any_characters() -> None:
    awkward = 'quote " backslash \\ newline \n tab \t del \x7f unicode é ✓ 😀 nul \x00'
    document = {"t": {"weird key.x": awkward}}
    assert tomllib.loads(dumps(document)) == document


def test_a_broken_lock_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / LOCK_FILE
    path.write_text("[targets\n")
    with pytest.raises(InputError) as caught:
        read_lock(path)
    (issue,) = caught.value.issues
    assert issue.file == path and "not valid TOML" in issue.message
    assert issue.hint and "delete it" in issue.hint
    path.write_text("version = 99\n")
    with pytest.raises(InputError, match="version 99"):
        read_lock(path)


def test_the_lock_file_never_goes_into_an_artifact(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("app = None\n")
    (tmp_path / LOCK_FILE).write_text("version = 1\n")
    server = ServerSection.model_validate({"name": "demo", "entry": "app:app"})
    assert list(select_sources(tmp_path, server)) == ["app.py"]


# -- the base image's Python -----------------------------------------------------------------


def minor_of(found: Detected | None) -> str | None:
    return found.minor if found else None


def config(*env: str) -> dict[str, object]:
    return {"architecture": "amd64", "os": "linux", "config": {"Env": list(env)}}


def test_python_version_in_the_config_names_the_minor() -> None:
    found = minor_from_config(config("PATH=/usr/local/bin:/usr/bin", "PYTHON_VERSION=3.12.7"))
    assert found == Detected("3.12", "PYTHON_VERSION=3.12.7")
    assert minor_from_config(config("PYTHON_VERSION=3.13.0rc2")) == Detected(
        "3.13", "PYTHON_VERSION=3.13.0rc2"
    )
    assert minor_from_config(config("LANG=C.UTF-8")) is None
    assert minor_from_config({}) is None


def test_debian_python3_link_is_followed() -> None:
    layer = [
        FileEntry("usr/bin/python3.11"),
        FileEntry("usr/bin/python3", "python3.11"),
        FileEntry("usr/bin/python", "python3.11"),
    ]
    assert minor_from_files([layer], DEBIAN_PATH) == Detected(
        "3.11", "/usr/bin/python3 -> python3.11"
    )


def test_the_python3_first_on_path_wins() -> None:
    layer = [
        FileEntry("usr/bin/python3.11"),
        FileEntry("usr/bin/python3", "python3.11"),
        FileEntry("usr/local/bin/python3.12"),
        FileEntry("usr/local/bin/python3", "/usr/local/bin/python3.12"),
    ]
    assert minor_of(minor_from_files([layer], DEBIAN_PATH)) == "3.12"
    assert minor_of(minor_from_files([layer], "/usr/bin:/usr/local/bin")) == "3.11"


def test_links_are_followed_through_other_names_and_hard_links() -> None:
    chain = [
        FileEntry("usr/local/bin/python3.13"),
        FileEntry("usr/local/bin/python3", "/usr/local/bin/py"),
        FileEntry("usr/local/bin/py", "python3.13"),
    ]
    assert minor_from_files([chain], DEBIAN_PATH) == Detected(
        "3.13", "/usr/local/bin/python3 -> /usr/local/bin/py -> python3.13"
    )
    loop = [FileEntry("usr/bin/python3", "python"), FileEntry("usr/bin/python", "python3")]
    assert minor_from_files([loop], DEBIAN_PATH) is None


def test_a_plain_python3_file_is_named_by_its_sibling() -> None:
    layer = [FileEntry("usr/local/bin/python3"), FileEntry("usr/local/bin/python3.12")]
    assert minor_of(minor_from_files([layer], DEBIAN_PATH)) == "3.12"


def test_without_python3_the_versioned_programs_decide_when_they_agree() -> None:
    assert minor_from_files([[FileEntry("usr/bin/python3.11")]], DEBIAN_PATH) == Detected(
        "3.11", "/usr/bin/python3.11"
    )
    two = [FileEntry("usr/bin/python3.11"), FileEntry("usr/bin/python3.12")]
    assert minor_from_files([two], DEBIAN_PATH) is None
    assert minor_from_files([[FileEntry("opt/python3.12")]], DEBIAN_PATH) is None


def test_later_layers_and_whiteouts_count() -> None:
    first = [FileEntry("usr/bin/python3.11"), FileEntry("usr/bin/python3", "python3.11")]
    removed = [FileEntry("usr/bin/.wh.python3"), FileEntry("usr/bin/.wh.python3.11")]
    assert minor_from_files([first, removed], DEBIAN_PATH) is None
    replaced = [FileEntry("usr/bin/.wh..wh..opq"), FileEntry("usr/bin/python3.12")]
    assert minor_from_files([first, replaced], DEBIAN_PATH) == Detected(
        "3.12", "/usr/bin/python3.12"
    )


def layer(path: Path, members: list[tuple[str, str | None, bool]]) -> Path:
    """A gzip tar layer of (name, link, hard) entries: files when link is None."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, link, hard in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
                info.linkname = link
            archive.addfile(info, io.BytesIO(b"") if link is None else None)
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return path


def test_layers_are_read_from_their_tar_files(tmp_path: Path) -> None:
    debian = layer(
        tmp_path / "a.tar.gz",
        [("./usr/bin/python3.11", None, False), ("./usr/bin/python3", "python3.11", False)],
    )
    assert list(layer_entries(debian)) == [
        FileEntry("usr/bin/python3.11"),
        FileEntry("usr/bin/python3", "python3.11"),
    ]
    assert image_python(config("PATH=" + DEBIAN_PATH), [debian]) == Detected(
        "3.11", "/usr/bin/python3 -> python3.11"
    )
    hard = layer(
        tmp_path / "b.tar.gz",
        [
            ("usr/local/bin/python3.12", None, False),
            ("usr/local/bin/python3", "usr/local/bin/python3.12", True),
        ],
    )
    assert minor_of(image_python(config(), [debian, hard])) == "3.12"
    # The config's PYTHON_VERSION is taken without reading a layer.
    assert image_python(config("PYTHON_VERSION=3.13.1"), [tmp_path / "missing"]) == Detected(
        "3.13", "PYTHON_VERSION=3.13.1"
    )
    (tmp_path / "zstd").write_bytes(b"\x28\xb5\x2f\xfd not a tar")
    assert image_python(config(), [tmp_path / "zstd"]) is None


def test_detected_minors_are_cached_by_key(tmp_path: Path) -> None:
    cache = PythonCache(tmp_path / "store" / "base-python.json")
    assert cache.get("k") is None
    cache.put("k", Detected("3.11", "/usr/bin/python3 -> python3.11"))
    assert PythonCache(cache.path).get("k") == Detected("3.11", "/usr/bin/python3 -> python3.11")
    cache.path.write_text("not json")
    assert cache.get("k") is None


# -- init ------------------------------------------------------------------------------------


def test_init_writes_this_machines_python_when_supported() -> None:
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert host_python() == (mine if mine in PYTHON_VERSIONS else DEFAULT_PYTHON)
    assert DEFAULT_PYTHON in PYTHON_VERSIONS


def test_init_falls_back_to_the_default_on_other_pythons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    assert host_python() == DEFAULT_PYTHON
