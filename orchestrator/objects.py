"""Lambda zips in S3 buckets, by digest: copy one between buckets, fetch one into the store.

Every object is `zip_key(server, digest)` with S3's SHA256 checksum: the base64 of the
digest's raw sha256 (also Lambda's CodeSha256). `copy_zip` promotes a zip from one environment's
`artifact_bucket` to another's by a server-side CopyObject that has S3 compute that checksum,
read back (HeadObject, checksum mode on) and compared with the digest. `fetch_zip` brings a zip
to a store that lacks it, hashed as it streams in. Credentials and endpoint come as the AWS SDKs
find them (environment, profile, `AWS_ENDPOINT_URL_S3`); boto3 is imported inside functions
only, so fast commands never pay for it. Failures are `OperationError`s with a hint.
"""

from __future__ import annotations

import base64
import hashlib
import re
from contextlib import closing
from pathlib import Path
from typing import Any

from orchestrator.build.store import ArtifactStore, BlobState
from orchestrator.errors import OperationError

# boto3 ships no type information (and no stubs are installed): its clients, responses and
# exceptions are `Any` at this boundary; each response field used is checked.
S3Client = Any

_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_CHUNK = 1 << 20
_MISSING = ("404", "NoSuchKey", "NotFound")
_AGAIN = "deploy the artifact from a store that holds it, so that the object is uploaded anew"


def zip_key(server: str, digest: str) -> str:
    """The object key of a server's zip: the format of `stacks.aws_lambda.artifact_key`, which
    stacks cannot import from here (tests/unit/test_objects.py keeps the two equal)."""
    return f"mcp-deploy/{server}/{_hex(digest)}.zip"


def checksum_sha256(digest: str) -> str:
    """S3's ChecksumSHA256 (and Lambda's CodeSha256) of the bytes whose digest is `digest`."""
    return base64.b64encode(bytes.fromhex(_hex(digest))).decode("ascii")


def copy_zip(
    source_bucket: str,
    destination_bucket: str,
    key: str,
    digest: str,
    region: str,
    endpoint_url: str | None = None,
    *,
    source_region: str | None = None,
) -> None:
    """Make `destination_bucket` (in `region`: the function's) hold object `key` of
    `source_bucket` with the SHA256 checksum of `digest`. Nothing is copied when it already
    does; a source whose SHA256 checksum is another's is refused before copying; the copy is
    checked after. The source's region is asked from S3 unless `source_region` says it."""
    expected = checksum_sha256(digest)
    source_where, destination_where = f"s3://{source_bucket}/{key}", f"s3://{destination_bucket}"
    destination = _client(region, endpoint_url)
    if _sha256(_head(destination, destination_bucket, key, missing_ok=True)) == expected:
        return
    source_region = source_region or _bucket_region(destination, source_bucket, region)
    source = destination if source_region == region else _client(source_region, endpoint_url)
    head = _head(source, source_bucket, key, missing_ok=False)
    _check(head, source_where, digest, "nothing was copied")
    etag = head.get("ETag")  # copy the very object just checked, not a newer one
    try:
        destination.copy_object(
            Bucket=destination_bucket,
            Key=key,
            CopySource={"Bucket": source_bucket, "Key": key},
            ChecksumAlgorithm="SHA256",
            **({"CopySourceIfMatch": etag} if isinstance(etag, str) else {}),
        )
    except _sdk_errors() as error:
        needs = (
            f"allow s3:GetObject on {source_where} and s3:PutObject on {destination_where}/{key}"
        )
        doing = f"copy {source_where} to {destination_where}"
        raise _failure(error, doing, source_where, needs) from None
    copied = _head(destination, destination_bucket, key, missing_ok=False)
    copy = f"{destination_where}/{key} (copied from {source_where})"
    _check(copied, copy, digest, "the copy is not the artifact", required=True)


def fetch_zip(
    bucket: str,
    key: str,
    digest: str,
    region: str,
    store: ArtifactStore,
    endpoint_url: str | None = None,
) -> Path:
    """The stored path of blob `digest`, downloaded from `s3://bucket/key` first when the store
    lacks it. The bytes are hashed as they stream into the store's scratch space, and are
    moved into the store (`ArtifactStore.add_file`, which names them by their own hash) only
    when they are `digest`'s: otherwise nothing is left behind."""
    _hex(digest)
    if store.check_blob(digest) is BlobState.INTACT:
        return store.blob_path(digest)
    where = f"s3://{bucket}/{key}"
    with store.scratch("fetch") as folder:
        path, hasher = folder / "zip", hashlib.sha256()
        try:
            client = _client(region, endpoint_url)
            response = client.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            with closing(response["Body"]) as body, path.open("wb") as handle:
                _check(response, where, digest, "nothing was stored")
                while chunk := body.read(_CHUNK):
                    hasher.update(chunk)
                    handle.write(chunk)
        except _sdk_errors() as error:
            raise _failure(error, f"download {where}", where) from None
        if "sha256:" + hasher.hexdigest() != digest:
            found = f"its bytes hash to sha256:{hasher.hexdigest()}"
            raise _not_digest(where, digest, found, "nothing was stored")
        stored_digest, _size, stored = store.add_file(path)  # named by the store's own hash
    if stored_digest != digest:
        raise OperationError(f"the store did not keep {where} as blob {digest}")
    return stored


def _not_digest(where: str, digest: str, found: str, outcome: str) -> OperationError:
    return OperationError(
        f"{where} is not {digest}: {found}; {outcome}",
        hint=f"the object under this digest's key was replaced or damaged: {_AGAIN}",
    )


def _hex(digest: str) -> str:
    if match := _DIGEST.match(digest):
        return match.group(1)
    raise OperationError(f"{digest!r} is not a sha256 digest", hint="write sha256:<64 hex>")


def _client(region: str, endpoint_url: str | None) -> S3Client:
    """An S3 client in `region`; credentials (and the endpoint, unless `endpoint_url`) as the
    AWS SDKs find them."""
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    config = Config(retries={"mode": "standard"}, connect_timeout=10, read_timeout=120)
    session = boto3.session.Session()
    return session.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)


def _sdk_errors() -> Any:
    """The exceptions of boto3 (an `except` clause evaluates this only once one is raised)."""
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    return (BotoCoreError, ClientError)


def _bucket_region(client: S3Client, bucket: str, fallback: str) -> str:
    """The region of `bucket`, as HeadBucket's answer names it (a refusal's too). When S3 does
    not say, `fallback`: a wrong region then gets a redirect that boto3 follows by itself, and
    a missing bucket or key is reported by the HeadObject that follows."""
    try:
        response = client.head_bucket(Bucket=bucket)
    except _sdk_errors() as error:
        response = getattr(error, "response", None)
    region = _headers(response).get("x-amz-bucket-region")
    return region if isinstance(region, str) and region else fallback


def _head(client: S3Client, bucket: str, key: str, *, missing_ok: bool) -> dict[str, Any]:
    """HeadObject with checksum mode on; {} for a missing object when `missing_ok` (S3 answers
    403 for one when the caller may not list the bucket: a missing GetObject right shows
    later)."""
    where = f"s3://{bucket}/{key}"
    try:
        response: dict[str, Any] = client.head_object(
            Bucket=bucket, Key=key, ChecksumMode="ENABLED"
        )
    except _sdk_errors() as error:
        if missing_ok and _code(error) in (*_MISSING, "403"):
            return {}
        raise _failure(error, f"read {where}", where) from None
    return response


def _sha256(response: dict[str, Any]) -> str | None:
    """The object's full-object SHA256 checksum, or None (none stored, or a multipart upload's
    checksum of checksums, which is not the bytes' sha256)."""
    value = response.get("ChecksumSHA256")
    if not isinstance(value, str) or "-" in value or response.get("ChecksumType") == "COMPOSITE":
        return None
    return value


def _check(
    response: dict[str, Any], where: str, digest: str, outcome: str, *, required: bool = False
) -> None:
    """Refuse an object whose SHA256 checksum is not `digest`'s (or, if `required`, absent)."""
    found, expected = _sha256(response), checksum_sha256(digest)
    if (found is not None or required) and found != expected:
        checksum = f"its SHA256 checksum is {found or 'absent'}, not {expected}"
        raise _not_digest(where, digest, checksum, outcome)


def _code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _headers(response: Any) -> dict[str, Any]:
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders") if response else None
    return headers if isinstance(headers, dict) else {}


def _failure(error: Exception, doing: str, where: str, needs: str = "") -> OperationError:
    """A boto3 error as an `OperationError` that says what could not be done and what to do:
    `where` is the object a "not found" is about, `needs` the permission it takes."""
    from botocore import exceptions  # type: ignore[import-untyped]

    code = _code(error)
    detail = getattr(error, "response", {}).get("Error", {}).get("Message") if code else None
    message = f"{code}: {detail}" if detail else code or str(error)
    if isinstance(error, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return OperationError(
            f"cannot {doing}: no AWS credentials",
            hint="set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use a role",
        )
    if isinstance(error, exceptions.FlexibleChecksumError):
        return OperationError(
            f"cannot {doing}: the bytes S3 sent do not match the object's checksum ({error}); "
            "nothing was stored",
            hint=f"try again; when it fails again the object is damaged: {_AGAIN}",
        )
    if isinstance(error, exceptions.EndpointConnectionError):
        hint = "check the network, the region, and AWS_ENDPOINT_URL_S3 when it is set"
        return OperationError(f"cannot {doing}: S3 is not reachable ({error})", hint=hint)
    if code in _MISSING:
        hint = "check bucket and digest: was the source deployed with an artifact_bucket?"
        return OperationError(f"{where} does not exist", hint=hint)
    if code == "NoSuchBucket":
        hint = "check targets.lambda.artifact_bucket: mcp-deploy creates no bucket"
        return OperationError(f"cannot {doing}: a bucket does not exist ({message})", hint=hint)
    if code in ("403", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId"):
        also = " (without s3:ListBucket S3 answers 403 for a missing object)" * (code == "403")
        return OperationError(
            f"cannot {doing}: access denied ({message})",
            hint=(needs or f"allow s3:GetObject on {where}") + also,
        )
    if code in ("412", "PreconditionFailed"):
        return OperationError(f"cannot {doing}: the source changed meanwhile", hint="try again")
    return OperationError(f"cannot {doing}: {message}")
