"""Secrets Manager's GetSecretValue at a Lambda cold start, without an AWS SDK.

Goes into the Lambda zip next to `mcp_deploy_lambda`. `read_secrets({NAME: ARN, ...})` reads
each secret's SecretString (several in parallel) with one SigV4-signed JSON 1.1 request
(`X-Amz-Target: secretsmanager.GetSecretValue`) per secret, over a plain socket (TLS for
https; the transport is `mcp_deploy_secrets_http`, next to it), importing nothing that the
shim does not import anyway (no boto3, no http.client).

Settings are taken from the environment the way the AWS SDKs take them on Lambda:
- credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (sent as
  X-Amz-Security-Token); without them, container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI
  with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE), as Lambda gives SnapStart functions, or
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI);
- region: AWS_REGION, then AWS_DEFAULT_REGION (Lambda sets both; boto3 reads only the second);
- endpoint: AWS_ENDPOINT_URL_SECRETS_MANAGER, then AWS_ENDPOINT_URL (both ignored when
  AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true; either wins over FIPS and dual-stack, as in
  botocore), then Secrets Manager's endpoint rules: the partition's DNS suffix
  (amazonaws.com.cn for cn-*, …), AWS_USE_FIPS_ENDPOINT, AWS_USE_DUALSTACK_ENDPOINT;
  AWS_CA_BUNDLE for https.
Retries as the SDKs' standard mode: AWS_MAX_ATTEMPTS (default 3) attempts in all, on
throttling errors, 429, 5xx and connection errors, with full-jitter exponential backoff.
Not supported: SecretBinary (an environment variable holds text: such a secret is an error),
HTTP proxies (HTTPS_PROXY is not honoured), clock-skew correction.

Errors: `SecretsError`, one line per failed secret naming its variable and ARN with AWS's error
code and message (and a hint for the usual causes); never a secret value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote, urlsplit

if TYPE_CHECKING or __package__:  # imported from the repository (tests, benches)
    from .mcp_deploy_secrets_http import Failure, aws_error, exchange, host_of, with_retries
else:  # in the zip, the module next to this one
    from mcp_deploy_secrets_http import Failure, aws_error, exchange, host_of, with_retries

__all__ = ["Credentials", "SecretsError", "endpoint_url", "read_secrets", "sign_v4"]

SERVICE = "secretsmanager"
TARGET = "secretsmanager.GetSecretValue"
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_PARALLEL = 8

# fmt: off
# Error codes the SDKs' standard mode retries (throttling and transient ones).
RETRYABLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "RequestThrottled", "RequestTimeout",
    "RequestTimeoutException", "PriorRequestNotComplete",
})
CREDENTIAL_CODES = frozenset({
    "UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch",
    "IncompleteSignature", "IncompleteSignatureException", "InvalidClientTokenId",
    "ExpiredToken", "ExpiredTokenException", "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
})
HINTS = {
    "ResourceNotFoundException": "no such secret (or no such version) in this account and "
    "region: check the ARN",
    "AccessDeniedException": "the function's role needs secretsmanager:GetSecretValue on "
    "this secret (a partial ARN in IAM needs the -?????? suffix), and kms:Decrypt when a "
    "customer-managed KMS key encrypts it",
    "AccessDenied": "the function's role needs secretsmanager:GetSecretValue on this secret",
    "DecryptionFailure": "the function's role needs kms:Decrypt on the secret's KMS key",
    "InvalidRequestException": "the secret may be scheduled for deletion",
}
CREDENTIAL_HINT = (
    "the credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN were refused"
)

# Botocore's SIGNED_HEADERS_BLACKLIST: headers never signed.
UNSIGNED = frozenset({
    "baggage", "connection", "expect", "keep-alive", "proxy-authenticate",
    "proxy-authorization", "te", "traceparent", "tracestate", "trailer", "transfer-encoding",
    "upgrade", "user-agent", "x-amzn-trace-id",
})

# botocore's partitions.json: (name, region pattern, DNS suffix, dual-stack DNS suffix).
PARTITIONS = (
    ("aws", r"(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+", "amazonaws.com", "api.aws"),
    ("aws-cn", r"cn\-\w+\-\d+", "amazonaws.com.cn", "api.amazonwebservices.com.cn"),
    ("aws-eusc", r"eusc\-(de)\-\w+\-\d+", "amazonaws.eu", "api.amazonwebservices.eu"),
    ("aws-iso", r"us\-iso\-\w+\-\d+", "c2s.ic.gov", "api.aws.ic.gov"),
    ("aws-iso-b", r"us\-isob\-\w+\-\d+", "sc2s.sgov.gov", "api.aws.scloud"),
    ("aws-iso-e", r"eu\-isoe\-\w+\-\d+", "cloud.adc-e.uk", "api.cloud-aws.adc-e.uk"),
    ("aws-iso-f", r"us\-isof\-\w+\-\d+", "csp.hci.ic.gov", "api.aws.hci.ic.gov"),
    ("aws-us-gov", r"us\-gov\-\w+\-\d+", "amazonaws.com", "api.aws"),
)
# Where http (not https) container credentials may come from, as botocore allows.
CONTAINER_HOSTS = ("localhost", "::1", "169.254.170.2", "169.254.170.23", "fd00:ec2::23")

class SecretsError(Exception):
    """Reading secrets failed. `failures`: variable name → one line saying why (no values)."""

    def __init__(self, message: str, failures: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.failures = dict(failures or {})


class Credentials(NamedTuple):
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


# -- SigV4 ---------------------------------------------------------------------------------


def sign_v4(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    region: str,
    service: str,
    credentials: Credentials,
    timestamp: float,
) -> dict[str, str]:
    """The headers to send for a request signed with Signature Version 4 at `timestamp` (Unix
    seconds), as botocore's SigV4Auth signs it: `headers` (all signed but botocore's unsigned
    ones) with Host (from the URL, unless given), X-Amz-Date, X-Amz-Security-Token (with a
    session token) and Authorization."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(timestamp))
    token = credentials.session_token
    replaced = {"authorization", "x-amz-date"} | ({"x-amz-security-token"} if token else set())
    parts = urlsplit(url)
    out: dict[str, str] = {}
    if not any(name.lower() == "host" for name in headers):
        out["Host"] = host_of(parts)
    out.update((n, v) for n, v in headers.items() if n.lower() not in replaced)
    out["X-Amz-Date"] = amz_date
    if token:
        out["X-Amz-Security-Token"] = token
    signed: dict[str, list[str]] = {}
    for name, value in out.items():
        if name.lower() not in UNSIGNED:
            signed.setdefault(name.lower(), []).append(" ".join(value.split()))
    names = sorted(signed)
    payload = next(
        (v for n, v in out.items() if n.lower() == "x-amz-content-sha256"),
        hashlib.sha256(body).hexdigest(),
    )
    canonical = "\n".join(
        [
            method.upper(),
            quote(_remove_dot_segments(parts.path) if parts.path else "/", safe="/~"),
            "&".join(f"{k}={v}" for k, v in sorted(_query_pairs(parts.query))),
            "".join(f"{name}:{','.join(signed[name])}\n" for name in names),
            ";".join(names),
            payload,
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + credentials.secret_access_key).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, with empty segments dropped too (as AWS and botocore do)."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """A URL's (already encoded) query as (name, value) pairs, as botocore reads it."""
    return [(k, v) for k, _, v in (p.partition("=") for p in query.split("&"))] if query else []


# -- settings from the environment ---------------------------------------------------------


def region_of(environ: Mapping[str, str]) -> str:
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""
    if not region:
        raise SecretsError("cannot read secrets: neither AWS_REGION nor AWS_DEFAULT_REGION is set")
    if not re.fullmatch(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)", region):
        raise SecretsError(f"cannot read secrets: {region!r} is not an AWS region name")
    return region


def endpoint_url(environ: Mapping[str, str]) -> str:
    """The Secrets Manager endpoint botocore would call with these settings (an endpoint of
    one's own wins over FIPS and dual-stack, as in botocore)."""
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() != "true":
        for name in ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"):
            if configured := environ.get(name, "").strip():
                return configured
    fips, dual = (
        environ.get(name, "").strip().lower() == "true"
        for name in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")
    )
    region = region_of(environ)
    name, dns, dual_dns = next(
        ((n, d, s) for n, pattern, d, s in PARTITIONS if re.fullmatch(pattern, region)),
        PARTITIONS[0][:1] + PARTITIONS[0][2:],
    )
    host = "secretsmanager-fips" if fips else "secretsmanager"
    if dual:
        dns = {"aws": dns, "aws-us-gov": dns, "aws-cn": dns}.get(name, dual_dns)
        if fips and name == "aws-cn":
            dns = dual_dns
    return f"https://{host}.{region}.{dns}"


def credentials_of(environ: Mapping[str, str]) -> Credentials:
    """Environment credentials, else container credentials (SnapStart), as botocore finds
    them."""
    key = environ.get("AWS_ACCESS_KEY_ID", "")
    secret = environ.get("AWS_SECRET_ACCESS_KEY", "")
    if key or secret:
        if not (key and secret):
            raise SecretsError(
                "cannot read secrets: only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "is set"
            )
        token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN") or None
        return Credentials(key, secret, token)
    full = environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
    relative = environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
    if relative:
        full = "http://169.254.170.2" + relative
    if not full:
        raise SecretsError(
            "cannot read secrets: no AWS credentials (AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY, or AWS_CONTAINER_CREDENTIALS_FULL_URI) in the environment"
        )
    return _container_credentials(full, environ)


def _container_credentials(url: str, environ: Mapping[str, str]) -> Credentials:
    parts = urlsplit(url)
    host = parts.hostname or ""
    local = host in CONTAINER_HOSTS or host.startswith("127.")
    if not (parts.scheme == "https" or (parts.scheme == "http" and local)):
        raise SecretsError(
            f"cannot read secrets: container credentials from {url!r} (http is for loopback "
            "and the container credentials addresses only)"
        )
    token = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN", "")
    if path := environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"):
        try:
            with open(path, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as error:
            raise SecretsError(f"cannot read secrets: cannot read {path}: {error}") from None
    headers = {"Host": host_of(parts), "Accept": "application/json"}
    if token:
        headers["Authorization"] = token

    def once() -> Credentials:
        status, _, data = exchange(parts, "GET", headers, b"", environ)
        if status != 200:
            raise Failure(f"HTTP {status}", retry=status == 429 or status >= 500)
        try:
            fields = json.loads(data)
            return Credentials(fields["AccessKeyId"], fields["SecretAccessKey"], fields["Token"])
        except (ValueError, KeyError, TypeError):
            raise Failure("the answer is not credentials", retry=False) from None

    try:
        return with_retries(once, environ)
    except Failure as failure:
        raise SecretsError(
            f"cannot read secrets: no container credentials from {url}: {failure}"
        ) from None


# -- reading secrets -----------------------------------------------------------------------


def read_secrets(
    arns: Mapping[str, str], environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """{variable name: SecretString} for each {variable name: secret ARN (or name)} of
    `arns`, read in parallel. SecretsError when any cannot be read, naming each that failed."""
    if not arns:
        return {}
    for name, arn in arns.items():
        if not name or "=" in name or "\0" in name or not isinstance(arn, str) or not arn:
            raise SecretsError(f"cannot read secrets: {name!r} → {arn!r} is not NAME → ARN")
    region, url = region_of(environ), endpoint_url(environ)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SecretsError(f"cannot read secrets: the endpoint {url!r} is not an http(s) URL")
    credentials = credentials_of(environ)
    jobs = iter(sorted(arns.items()))
    values: dict[str, str] = {}
    failures: dict[str, str] = {}
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                job = next(jobs, None)
            if job is None:
                return
            name, arn = job
            try:
                value = _get_secret_value(arn, url, region, credentials, environ)
            except Exception as error:  # a bug must not drop a secret silently
                bug = Failure(f"unexpected {type(error).__name__}", retry=False)
                why = error if isinstance(error, Failure) else bug
                hint = HINTS.get(why.code) or (
                    CREDENTIAL_HINT if why.code in CREDENTIAL_CODES else ""
                )
                line = f"cannot read secret {name} ({arn}) from Secrets Manager: {why}"
                with lock:
                    failures[name] = line + (f" (hint: {hint})" if hint else "")
            else:
                with lock:
                    values[name] = value

    helpers = [threading.Thread(target=work, daemon=True) for _ in range(len(arns) - 1)]
    del helpers[MAX_PARALLEL - 1 :]
    for thread in helpers:
        thread.start()
    work()  # this thread reads too
    for thread in helpers:
        thread.join()
    if failures:
        raise SecretsError("\n".join(failures[n] for n in sorted(failures)), failures)
    return values


def _get_secret_value(
    arn: str, url: str, region: str, credentials: Credentials, environ: Mapping[str, str]
) -> str:
    parts = urlsplit(url)
    body = json.dumps({"SecretId": arn}).encode()
    fixed = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET}

    def once() -> str:
        headers = sign_v4("POST", url, fixed, body, region, SERVICE, credentials, time.time())
        status, answer_headers, data = exchange(parts, "POST", headers, body, environ)
        if status != 200:
            code, message = aws_error(status, answer_headers, data)
            retry = status == 429 or status >= 500 or code in RETRYABLE_CODES
            raise Failure(f"{code}: {message}" if message else code, retry=retry, code=code)
        try:
            answer = json.loads(data)
        except ValueError:
            raise Failure("the answer is not GetSecretValue's JSON", retry=False) from None
        value = answer.get("SecretString") if isinstance(answer, dict) else None
        if isinstance(value, str):
            if "\0" in value:
                raise Failure(
                    "its SecretString holds a NUL character, which an environment variable "
                    "cannot hold",
                    retry=False,
                )
            return value
        if isinstance(answer, dict) and "SecretBinary" in answer:
            raise Failure(
                "it is a binary secret (SecretBinary); secrets reach the server as environment "
                "variables, which hold text: store it as a SecretString (base64, for example)",
                retry=False,
            )
        raise Failure("the answer has no SecretString", retry=False)

    return with_retries(once, environ)
