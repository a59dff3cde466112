"""Lambda's hard limits, checked before the program declares anything (no provider SDK here).

https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
- a zip uploaded directly (in the CreateFunction/UpdateFunctionCode request) is at most 50 MB;
  a larger one must come from an S3 bucket in the function's region;
- the unzipped contents are at most 250 MB, wherever the zip comes from;
- the environment variables together are at most 4 KB, measured as Lambda's error message shows
  ("String measured: {...}") and LocalStack emulates: the compact JSON object of all variables,
  so quotes, separators and escapes count too.

The only I/O is reading the zip: its bytes (for the digest) and its central directory (for the
unzipped size).
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import OperationError

MAX_DIRECT_UPLOAD = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024
MAX_ENVIRONMENT = 4 * 1024
# How many of the biggest variables an environment-size error names.
_NAMED = 3


@dataclass(frozen=True)
class CheckedZip:
    """A zip that is the request's artifact and fits Lambda: `code_sha256` is base64 of its
    raw sha256 (Lambda's CodeSha256), `hexdigest` the same in hex (the S3 key's name)."""

    code_sha256: str
    hexdigest: str
    size: int
    unzipped: int
    # mcp-deploy's launcher at the zip's root: a server that runs as a process behind AWS's
    # Lambda Web Adapter (a binary, or a Node command), not a handler in the runtime.
    has_launcher: bool = False


def checked_zip(request: DeploymentRequest, path: Path, bucket: str | None) -> CheckedZip:
    """Check that the zip at `path` can be deployed, in this order: over the direct-upload
    limit it needs `bucket` (`targets.lambda.artifact_bucket`); its sha256 must be the request's
    digest; its unzipped size must fit 250 MB. `OperationError` naming the limit otherwise."""
    size = path.stat().st_size
    if size > MAX_DIRECT_UPLOAD and bucket is None:
        raise OperationError(
            f"the Lambda zip is {size / 2**20:.1f} MB; a direct upload allows at most "
            f"{MAX_DIRECT_UPLOAD // 2**20} MB (zipped), and targets.lambda.artifact_bucket "
            "is not set",
            hint="set targets.lambda.artifact_bucket to an S3 bucket in the function's region: "
            "the zip is then uploaded there and Lambda takes it from S3",
        )
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    if f"sha256:{sha.hexdigest()}" != request.artifact.digest:
        raise OperationError(
            f"{path} is not the requested artifact ({request.artifact.digest})",
            hint="the engine must pass the stored zip of the request's digest",
        )
    unzipped = _unzipped_size(path)
    if unzipped > MAX_UNZIPPED:
        raise OperationError(
            f"the Lambda zip unpacks to {unzipped / 2**20:.1f} MB; Lambda allows at most "
            f"{MAX_UNZIPPED // 2**20} MB unzipped",
            hint="leave large files and unused dependencies out of the package, or deploy "
            "this server to Cloud Run",
        )
    with zipfile.ZipFile(path) as archive:
        has_launcher = "bootstrap" in archive.namelist()
    return CheckedZip(
        base64.b64encode(sha.digest()).decode(), sha.hexdigest(), size, unzipped, has_launcher
    )


def _unzipped_size(path: Path) -> int:
    """The total uncompressed size the zip's central directory declares."""
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as error:
        raise OperationError(
            f"{path} is not a readable zip: {error}",
            hint="rebuild the artifact with mcp-deploy build --target lambda",
        ) from error


def environment_size(variables: Mapping[str, str]) -> int:
    """Bytes the variables take against Lambda's limit (the compact JSON object of them)."""
    return len(json.dumps(dict(variables), separators=(",", ":")).encode())


def check_environment(variables: Mapping[str, str]) -> None:
    """`OperationError` when `variables` exceed Lambda's 4 KB, naming the biggest variables
    (names and sizes only: never a value)."""
    total = environment_size(variables)
    if total <= MAX_ENVIRONMENT:
        return
    sizes = sorted(
        ((environment_size({name: value}) - 2, name) for name, value in variables.items()),
        key=lambda item: (-item[0], item[1]),
    )
    biggest = ", ".join(f"{name} ({size} bytes)" for size, name in sizes[:_NAMED])
    raise OperationError(
        f"the function's environment variables take {total} bytes; Lambda allows at most "
        f"{MAX_ENVIRONMENT} bytes (4 KB) for all of them together. Biggest: {biggest}",
        hint="shorten or drop config values (a large value can ship as a file in the "
        "package); each secret adds its ARN (about 100 bytes) to MCP_DEPLOY_SECRET_ARNS",
    )
