"""Lambda zips between artifact buckets, against a real S3 implementation on loopback.

moto's server (its own process, on 127.0.0.1 only) holds two buckets in two regions. The zips
are real and keyed by digest as the Lambda program keys them, uploaded with a SHA256 checksum as
the program uploads them. No test reaches anything but 127.0.0.1: credentials are dummies from
the environment, no AWS config file is read, and the instance metadata service is off.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator import objects
from orchestrator.build.store import ArtifactStore, BlobState
from orchestrator.errors import OperationError
from orchestrator.objects import checksum_sha256, copy_zip, fetch_zip, zip_key
from tests.support.net import free_port, wait_for_port

pytestmark = pytest.mark.integration

SOURCE_REGION = "eu-west-1"  # staging's bucket
DESTINATION_REGION = "us-west-2"  # prod's bucket, in the function's region
SERVER = "toolbox"
CLIENT = objects._client  # the tests' own client, which `calls` does not record


@contextlib.contextmanager
def moto_server(log: Path, **settings: str) -> Iterator[str]:
    """moto's server in its own process on 127.0.0.1 (with moto `settings` in its environment),
    stopped on exit; yields its endpoint URL."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**environment, **settings},
        )
    try:
        wait_for_port(
            "127.0.0.1",
            port,
            timeout=60,
            gone=lambda: server.poll() is not None,
            describe=lambda: log.read_text(errors="replace")[-2000:],
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One S3 server for this module's tests."""
    with moto_server(tmp_path_factory.mktemp("moto") / "server.log") as url:
        yield url


@pytest.fixture(autouse=True)
def dummy_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials as the SDK finds them (here: the environment), and nothing else it could
    reach: no profile, no config file, no metadata service, no endpoint from outside."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", DESTINATION_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("NO_PROXY", "no_proxy"):  # loopback never through a proxy
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@dataclass
class Buckets:
    endpoint: str
    source: str
    destination: str

    def client(self, region: str) -> Any:
        return CLIENT(region, self.endpoint)

    def put(self, key: str, data: bytes, **checksum: str) -> None:
        """Upload as the Lambda program does: with a checksum (SHA256 unless told)."""
        arguments = checksum or {"ChecksumAlgorithm": "SHA256"}
        self.client(SOURCE_REGION).put_object(
            Bucket=self.source, Key=key, Body=data, ContentType="application/zip", **arguments
        )

    def head(self, bucket: str, key: str) -> dict[str, Any]:
        region = SOURCE_REGION if bucket == self.source else DESTINATION_REGION
        response: dict[str, Any] = self.client(region).head_object(
            Bucket=bucket, Key=key, ChecksumMode="ENABLED"
        )
        return response

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.head(bucket, key)
        except Exception as error:
            assert objects._code(error) == "404"
            return False
        return True

    def copy(self, key: str, digest: str) -> None:
        copy_zip(self.source, self.destination, key, digest, DESTINATION_REGION, self.endpoint)


@pytest.fixture
def buckets(endpoint: str) -> Buckets:
    """Two new buckets, one per region (the server outlives a test: names are unique)."""
    made = Buckets(endpoint, f"staging-{uuid.uuid4().hex[:12]}", f"prod-{uuid.uuid4().hex[:12]}")
    for bucket, region in ((made.source, SOURCE_REGION), (made.destination, DESTINATION_REGION)):
        made.client(region).create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
        )
    return made


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(region, operation) of every S3 call that `orchestrator.objects` makes."""
    made: list[tuple[str, str]] = []

    def recording(region: str, endpoint_url: str | None) -> Any:
        client = CLIENT(region, endpoint_url)

        def record(model: Any, **_: Any) -> None:
            made.append((client.meta.region_name, model.name))

        client.meta.events.register("before-call.s3", record)
        return client

    monkeypatch.setattr(objects, "_client", recording)
    return made


def lambda_zip(text: str = "def handler(event, context):\n    return {}\n") -> tuple[bytes, str]:
    """A real zip and its digest."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mcp_deploy_lambda.py", text)
    data = buffer.getvalue()
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def stored(buckets: Buckets) -> tuple[bytes, str, str]:
    data, digest = lambda_zip()
    key = zip_key(SERVER, digest)
    buckets.put(key, data)
    return data, digest, key


def test_a_copy_carries_the_digest_as_its_checksum_and_happens_once(
    buckets: Buckets, calls: list[tuple[str, str]]
) -> None:
    data, digest, key = stored(buckets)
    assert buckets.head(buckets.source, key)["ChecksumSHA256"] == checksum_sha256(digest)

    buckets.copy(key, digest)

    copied = buckets.head(buckets.destination, key)
    assert copied["ChecksumSHA256"] == checksum_sha256(digest)
    got = buckets.client(DESTINATION_REGION).get_object(Bucket=buckets.destination, Key=key)
    assert got["Body"].read() == data
    # the source is read through a client in its own region, the copy made in the destination's
    assert calls == [
        (DESTINATION_REGION, "HeadObject"),
        (DESTINATION_REGION, "HeadBucket"),
        (SOURCE_REGION, "HeadObject"),
        (DESTINATION_REGION, "CopyObject"),
        (DESTINATION_REGION, "HeadObject"),
    ]

    calls.clear()
    buckets.copy(key, digest)
    assert calls == [(DESTINATION_REGION, "HeadObject")]  # already there and right: no copy


def test_a_named_source_region_is_not_asked_for(
    buckets: Buckets, calls: list[tuple[str, str]]
) -> None:
    _data, digest, key = stored(buckets)
    copy_zip(
        buckets.source,
        buckets.destination,
        key,
        digest,
        DESTINATION_REGION,
        buckets.endpoint,
        source_region=SOURCE_REGION,
    )
    assert "HeadBucket" not in [operation for _region, operation in calls]
    assert buckets.head(buckets.destination, key)["ChecksumSHA256"] == checksum_sha256(digest)


def test_a_source_of_another_digest_is_refused_before_copying(buckets: Buckets) -> None:
    _data, digest, key = stored(buckets)
    _other, wrong = lambda_zip("other = 1\n")

    with pytest.raises(OperationError) as caught:
        buckets.copy(key, wrong)

    message = caught.value.message
    assert f"s3://{buckets.source}/{key}" in message
    assert checksum_sha256(digest) in message and checksum_sha256(wrong) in message
    assert caught.value.hint
    assert not buckets.exists(buckets.destination, key)


def test_a_source_without_sha256_is_checked_after_the_copy(buckets: Buckets) -> None:
    data, digest = lambda_zip()
    key = zip_key(SERVER, digest)
    buckets.put(key, data, ChecksumAlgorithm="CRC32")
    assert "ChecksumSHA256" not in buckets.head(buckets.source, key)
    _other, wrong = lambda_zip("other = 1\n")

    with pytest.raises(OperationError) as caught:
        buckets.copy(key, wrong)
    message = caught.value.message
    assert f"s3://{buckets.destination}/{key}" in message
    assert checksum_sha256(digest) in message and checksum_sha256(wrong) in message

    buckets.copy(key, digest)  # the right digest: S3 computes its SHA256 in the copy
    assert buckets.head(buckets.destination, key)["ChecksumSHA256"] == checksum_sha256(digest)


def test_a_missing_source_names_bucket_and_key(buckets: Buckets) -> None:
    _data, digest = lambda_zip()
    key = zip_key(SERVER, digest)

    with pytest.raises(OperationError) as caught:
        buckets.copy(key, digest)
    assert f"s3://{buckets.source}/{key} does not exist" in caught.value.message
    assert caught.value.hint

    with pytest.raises(OperationError) as caught:
        copy_zip("no-such-bucket-0", buckets.destination, key, digest, DESTINATION_REGION,
                 buckets.endpoint)  # fmt: skip
    assert f"s3://no-such-bucket-0/{key} does not exist" in caught.value.message


def test_a_malformed_digest_is_refused_without_a_call(calls: list[tuple[str, str]]) -> None:
    with pytest.raises(OperationError, match="is not a sha256 digest"):
        copy_zip("a", "b", "mcp-deploy/x/y.zip", "sha256:XYZ", DESTINATION_REGION)
    assert calls == []


def test_fetch_brings_the_zip_into_the_store_once(
    buckets: Buckets, calls: list[tuple[str, str]], tmp_path: Path
) -> None:
    data, digest, key = stored(buckets)
    store = ArtifactStore(tmp_path / "store")

    path = fetch_zip(buckets.source, key, digest, SOURCE_REGION, store, buckets.endpoint)

    assert path == store.blob_path(digest)
    assert path.read_bytes() == data
    assert store.check_blob(digest, len(data)) is BlobState.INTACT
    assert calls == [(SOURCE_REGION, "GetObject")]
    assert list(store.tmp.iterdir()) == []

    calls.clear()
    assert fetch_zip(buckets.source, key, digest, SOURCE_REGION, store, buckets.endpoint) == path
    assert calls == []  # the store holds it intact: nothing downloaded


def with_own_checksum(buckets: Buckets, key: str, other: bytes, digest: str) -> str:
    """Other bytes with their own SHA256 checksum: S3's checksum already says so."""
    buckets.put(key, other)
    other_digest = "sha256:" + hashlib.sha256(other).hexdigest()
    return f"its SHA256 checksum is {checksum_sha256(other_digest)}, not {checksum_sha256(digest)}"


def with_crc32_only(buckets: Buckets, key: str, other: bytes, _digest: str) -> str:
    """Other bytes with another algorithm's checksum only: the hash of the stream says so."""
    buckets.put(key, other, ChecksumAlgorithm="CRC32")
    return f"its bytes hash to sha256:{hashlib.sha256(other).hexdigest()}"


def with_claimed_checksum(buckets: Buckets, key: str, other: bytes, digest: str) -> str:
    """Other bytes claiming the digest's checksum (real S3 refuses such an upload; moto keeps
    it): the SDK's check of the response stream says so."""
    buckets.put(key, other, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum_sha256(digest))
    return "the bytes S3 sent do not match the object's checksum"


@pytest.mark.parametrize("tamper", [with_own_checksum, with_crc32_only, with_claimed_checksum])
def test_a_tampered_object_is_not_fetched(
    buckets: Buckets, tmp_path: Path, tamper: Callable[[Buckets, str, bytes, str], str]
) -> None:
    _data, digest, key = stored(buckets)
    other, other_digest = lambda_zip("def handler(event, context):\n    return 'evil'\n")
    named = tamper(buckets, key, other, digest)
    store = ArtifactStore(tmp_path / "store")

    with pytest.raises(OperationError) as caught:
        fetch_zip(buckets.source, key, digest, SOURCE_REGION, store, buckets.endpoint)

    message = caught.value.message
    assert f"s3://{buckets.source}/{key}" in message
    assert named in message
    assert "nothing was stored" in message
    assert caught.value.hint
    assert store.check_blob(digest) is BlobState.MISSING
    assert store.check_blob(other_digest) is BlobState.MISSING
    blobs = store.root / "blobs"
    assert not blobs.exists() or [p for p in blobs.rglob("*") if p.is_file()] == []
    assert not store.tmp.exists() or list(store.tmp.iterdir()) == []


def test_a_missing_object_is_not_fetched(buckets: Buckets, tmp_path: Path) -> None:
    _data, digest = lambda_zip()
    key = zip_key(SERVER, digest)
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(OperationError) as caught:
        fetch_zip(buckets.source, key, digest, SOURCE_REGION, store, buckets.endpoint)
    assert f"s3://{buckets.source}/{key} does not exist" in caught.value.message
    assert store.check_blob(digest) is BlobState.MISSING


def test_without_credentials_the_hint_says_where_they_come_from(
    buckets: Buckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    _data, digest, key = stored(buckets)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(OperationError) as caught:
        buckets.copy(key, digest)
    assert "no AWS credentials" in caught.value.message
    assert caught.value.hint and "AWS_PROFILE" in caught.value.hint


def test_access_denied_names_the_permission(tmp_path: Path) -> None:
    """A server that checks credentials (moto with IAM checks from the first request) refuses
    the dummy ones with a real 403."""
    _data, digest = lambda_zip()
    key = zip_key(SERVER, digest)
    with moto_server(tmp_path / "server.log", INITIAL_NO_AUTH_ACTION_COUNT="0") as url:
        with pytest.raises(OperationError) as copying:
            copy_zip("staging-artifacts", "prod-artifacts", key, digest, DESTINATION_REGION, url)
        with pytest.raises(OperationError) as fetching:
            store = ArtifactStore(tmp_path / "store")
            fetch_zip("staging-artifacts", key, digest, SOURCE_REGION, store, url)
    for caught in (copying, fetching):
        assert "access denied" in caught.value.message
        assert f"s3://staging-artifacts/{key}" in caught.value.message
        assert (
            caught.value.hint
            and f"s3:GetObject on s3://staging-artifacts/{key}" in caught.value.hint
        )
