"""The store never trusts a blob it has not checked: damaged blobs are noticed, discarded and
built again; blobs appear under their digest name only whole; scratch space lives under the
store and what dead builds leave there is removed by the next build."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import orchestrator.build.store as store_module
from orchestrator.artifacts import Artifact
from orchestrator.build.pipeline import build
from orchestrator.build.scratch import machine_tag, owner_prefix, scratch_dir
from orchestrator.build.store import ArtifactStore, BlobState
from orchestrator.errors import OperationError
from orchestrator.processes import start_time
from orchestrator.spec.loader import load_spec
from targets.cloudrun.package import _dependency_layer
from tests.conftest import MINIMAL

REPO = Path(__file__).resolve().parents[2]
SPEC = MINIMAL + '\n[targets.lambda]\narch = "x86_64"\n'
BIG = 2 * store_module.STAMP_MIN_SIZE


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def store_of(spec: Path) -> ArtifactStore:
    return ArtifactStore(spec.parent / ".mcp-deploy" / "store")


def build_zip(spec: Path, steps: list[str] | None = None) -> Artifact:
    (artifact,) = build(load_spec(spec), "lambda", (steps if steps is not None else []).append)
    return artifact


@pytest.fixture
def spec(project: Callable[[str], Path]) -> Path:
    return project(SPEC)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the store hashes (the expensive part of a check), in order."""
    seen: list[Path] = []
    real = store_module.file_digest

    def counting(path: Path) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(store_module, "file_digest", counting)
    return seen


def later(monkeypatch: pytest.MonkeyPatch, seconds: float = 10.0) -> None:
    """The store's clock, `seconds` ahead: stamps taken now are past the racy window."""
    monkeypatch.setattr(store_module, "_now_ns", lambda: time.time_ns() + int(seconds * 1e9))


# -- damaged blobs are noticed and rebuilt ------------------------------------------------
def test_a_truncated_zip_is_noticed_and_built_again(spec: Path) -> None:
    first = build_zip(spec)
    assert first.path.parent == store_of(spec).root / "blobs" / "sha256"
    data = first.path.read_bytes()
    first.path.write_bytes(data[: len(data) // 2])

    steps: list[str] = []
    again = build_zip(spec, steps)
    assert any("was damaged" in s and "building it again" in s for s in steps), steps
    assert not any("reusing the stored zip" in s for s in steps), steps
    assert again.digest == first.digest
    assert again.size == first.size == again.path.stat().st_size
    assert sha256(again.path) == again.digest


def test_a_zip_altered_with_the_same_size_is_caught(spec: Path) -> None:
    first = build_zip(spec)
    data = bytearray(first.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.path.write_bytes(bytes(data))
    assert first.path.stat().st_size == first.size

    steps: list[str] = []
    again = build_zip(spec, steps)
    assert any("was damaged" in s for s in steps), steps
    assert again.digest == first.digest and sha256(again.path) == first.digest


def test_a_missing_blob_or_unreadable_record_means_a_rebuild(spec: Path) -> None:
    first = build_zip(spec)
    first.path.unlink()
    steps: list[str] = []
    assert build_zip(spec, steps).digest == first.digest
    assert any("is missing its file" in s for s in steps), steps

    record = store_of(spec).root / "artifacts" / (first.digest.split(":")[1] + ".json")
    record.write_text('{"kind": "lambda-zip", "dig')  # what a crash could leave
    steps.clear()
    assert build_zip(spec, steps).digest == first.digest
    assert any("unreadable artifact record" in s for s in steps), steps
    assert json.loads(record.read_text())["digest"] == first.digest


def test_a_warm_check_does_not_hash_an_unchanged_large_blob(
    tmp_path: Path, hashes: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactStore(tmp_path / "store")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(BIG))
    monkeypatch.setattr(store_module, "RACY_NS", 3600 * 10**9)  # however slow this machine is
    digest, size, _stored = store.add_file(source)
    assert not source.exists() and len(hashes) == 1

    # Just written: the stamp is too close to the file's last change to be trusted.
    assert store.check_blob(digest, size) is BlobState.INTACT
    assert len(hashes) == 2
    # Hashed again well after the change, it is trusted from then on.
    later(monkeypatch, seconds=7200)
    assert store.check_blob(digest, size) is BlobState.INTACT
    assert len(hashes) == 3
    for _ in range(3):
        assert store.check_blob(digest, size) is BlobState.INTACT
    assert len(hashes) == 3, "an unchanged, stamped blob must not be hashed again"


def test_a_stamped_blob_altered_in_place_is_still_caught(
    tmp_path: Path, hashes: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactStore(tmp_path / "store")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(BIG))
    digest, size, stored = store.add_file(source)
    old = time.time() - 3600
    os.utime(stored, (old, old))  # its last write, long ago
    later(monkeypatch)
    assert store.check_blob(digest, size) is BlobState.INTACT  # hashed and stamped
    assert store.check_blob(digest, size) is BlobState.INTACT  # from the stamp
    checks = len(hashes)

    with stored.open("r+b") as handle:  # same size, one byte different
        handle.seek(size // 3)
        byte = handle.read(1)
        handle.seek(size // 3)
        handle.write(bytes([byte[0] ^ 0x01]))
    assert stored.stat().st_size == size
    assert store.check_blob(digest, size) is BlobState.DISCARDED
    assert len(hashes) == checks + 1
    assert not stored.exists()
    assert not (store.root / "checked" / (digest.split(":")[1] + ".json")).exists()


def test_a_wrong_size_is_caught_without_hashing(tmp_path: Path, hashes: list[Path]) -> None:
    store = ArtifactStore(tmp_path / "store")
    digest, size = store.add_bytes(b"x" * 100)
    assert store.check_blob(digest, size + 1) is BlobState.DISCARDED
    assert hashes == [] and store.check_blob(digest) is BlobState.MISSING


def test_a_damaged_image_layer_is_discarded_with_the_image_record(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    config, config_size = store.add_bytes(b'{"os":"linux"}')
    layer, layer_size = store.add_bytes(os.urandom(5000))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": config, "size": config_size},
        "layers": [{"digest": layer, "size": layer_size}],
    }
    digest, size = store.add_bytes(json.dumps(manifest).encode())
    total = size + config_size + layer_size
    image = Artifact("oci-image", "cloudrun", digest, total, "inputs", store.blob_path(digest))
    store.record(image)
    assert store.find("oci-image", "inputs") == image

    store.blob_path(layer).write_bytes(os.urandom(5000))  # same size, other bytes
    steps: list[str] = []
    assert store.find("oci-image", "inputs", steps.append) is None
    assert any("has a damaged blob" in s and layer[:19] in s for s in steps), steps
    assert not store.blob_path(layer).exists()
    assert store.blob_path(digest).exists()  # the manifest itself is fine
    assert not list((store.root / "artifacts").glob("*.json"))


def test_a_damaged_dependency_layer_is_built_again(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    site = tmp_path / "site"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_bytes(os.urandom(3000))
    steps: list[str] = []

    def layer_now() -> tuple[str, int]:
        with store.scratch("image") as scratch:
            made = _dependency_layer(store, site, "key1", scratch, steps.append)
        assert made.path == store.blob_path(made.digest)
        assert sha256(made.path) == made.digest and made.path.stat().st_size == made.size
        return made.digest, made.size

    first = layer_now()
    path = store.blob_path(first[0])
    path.write_bytes(path.read_bytes()[:-10])
    assert layer_now() == first
    assert any("dependency layer" in s and "damaged" in s for s in steps), steps
    (store.root / "layers" / "key1.json").write_text('{"digest": "sha')  # a torn record
    assert layer_now() == first


# -- writes are atomic and verified -------------------------------------------------------
def test_a_failed_write_never_appears_under_its_digest_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactStore(tmp_path / "store")
    source = tmp_path / "zip"
    source.write_bytes(os.urandom(BIG))
    digest = sha256(source)
    real_replace, real_fsync = os.replace, os.fsync

    def other_filesystem(src: str | Path, dst: str | Path) -> None:
        if Path(src) == source:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    def disk_full(descriptor: int) -> None:
        if os.readlink(f"/proc/self/fd/{descriptor}").startswith(str(store.tmp)):
            raise OSError(errno.ENOSPC, "No space left on device")  # the copy under tmp/
        real_fsync(descriptor)

    monkeypatch.setattr(os, "replace", other_filesystem)
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.add_file(source)
    assert not store.blob_path(digest).exists()
    assert source.exists()
    assert not list(store.tmp.iterdir()), "the partial copy must be removed"

    monkeypatch.setattr(os, "fsync", real_fsync)  # the disk has room again
    assert store.add_file(source)[:2] == (digest, BIG)
    assert sha256(store.blob_path(digest)) == digest and not source.exists()


def test_a_copy_that_does_not_match_its_digest_is_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    source = tmp_path / "layer"
    source.write_bytes(b"not what the name says")
    claimed = "sha256:" + "ab" * 32
    with pytest.raises(OperationError, match="is not blob"):
        store.add_file_copy(source, claimed)
    assert not store.blob_path(claimed).exists() and not list(store.tmp.iterdir())


def test_a_build_killed_mid_write_leaves_nothing_under_a_digest_and_is_cleaned_up(
    spec: Path,
) -> None:
    # A build in another process writes half the zip and is killed (SIGKILL) right there.
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        import targets.aws_lambda.package as package
        from orchestrator.build.pipeline import build
        from orchestrator.spec.loader import load_spec

        def crash(entries, destination, limits):
            Path(destination).write_bytes(b"PK\\x03\\x04" + b"half a zip" * 100)
            os.kill(os.getpid(), signal.SIGKILL)

        package.write_zip_within = crash
        build(load_spec(Path({str(spec)!r})), "lambda")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, timeout=300, check=False
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    store = store_of(spec)
    (leftover,) = list(store.tmp.iterdir())
    assert (leftover / "lambda.zip").is_file()
    assert not list((store.root / "blobs" / "sha256").glob("*"))  # nothing under a digest
    assert not (store.root / "artifacts").exists() or not list((store.root / "artifacts").iterdir())

    steps: list[str] = []
    artifact = build_zip(spec, steps)
    assert not leftover.exists()
    assert any("removed 1 leftover(s) of builds that ended" in s for s in steps), steps
    assert sha256(artifact.path) == artifact.digest
    assert not list(store.tmp.iterdir()), "a finished build leaves no scratch behind"


def test_only_leftovers_of_dead_processes_of_this_machine_are_removed(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    store.tmp.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        started = start_time(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
    assert started is not None
    dead = store.tmp / f"{sleeper.pid}-{started}-{machine_tag()}-lambda-abc"
    (dead / "app").mkdir(parents=True)
    (store.tmp / f"{sleeper.pid}-{started}-{machine_tag()}-blob-def").write_bytes(b"partial")
    mine = store.tmp / f"{owner_prefix()}image-ghi"
    other_machine = store.tmp / f"{sleeper.pid}-{started}-{'0' * 8}-lambda-jkl"
    if machine_tag() == "0" * 8:  # pragma: no cover - astronomically unlikely
        other_machine = store.tmp / f"{sleeper.pid}-{started}-{'1' * 8}-lambda-jkl"
    unknown = store.tmp / "something-else"
    for kept in (mine, other_machine, unknown):
        kept.mkdir()

    removed = store.tidy()
    assert sorted(p.name for p in removed) == sorted(
        [dead.name, f"{sleeper.pid}-{started}-{machine_tag()}-blob-def"]
    )
    assert sorted(p.name for p in store.tmp.iterdir()) == sorted(
        p.name for p in (mine, other_machine, unknown)
    )
    assert store.tidy() == []  # once per store object


def test_builds_make_their_scratch_space_under_the_store(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    made: list[Path] = []
    real = scratch_dir

    @contextlib.contextmanager
    def spy(root: Path, purpose: str) -> Iterator[Path]:
        with real(root, purpose) as path:
            made.append(path)
            yield path

    monkeypatch.setattr(store_module, "scratch_dir", spy)
    build_zip(spec)
    assert [p.parent for p in made] == [store_of(spec).tmp]
    assert not [p for p in system_tmp.iterdir() if p.name.startswith("mcp-deploy-")]
