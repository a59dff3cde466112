"""The Lambda shim's SDK-free Secrets Manager client against botocore, offline.

`sign_v4` must give byte for byte the headers botocore's own `SigV4Auth.add_auth` gives the same
request at the same instant (regions of three partitions, with and without a session token,
secret ids with special characters, several timestamps, odd URLs and header values); and
`endpoint_url` must pick the endpoint botocore's rule set picks for the same environment.
"""

from __future__ import annotations

import datetime
import io
import itertools
import json
import os
from typing import Any
from unittest import mock

import botocore.loaders  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
import pytest
from botocore.auth import SigV4Auth, _host_from_url  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials as BotoCredentials  # type: ignore[import-untyped]
from botocore.exceptions import EndpointVariantError  # type: ignore[import-untyped]

from targets.aws_lambda.shim import mcp_deploy_secrets as secrets
from targets.aws_lambda.shim import mcp_deploy_secrets_http as transport
from targets.aws_lambda.shim.mcp_deploy_secrets import Credentials, SecretsError, sign_v4

REGIONS = ("us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1")
TOKENS = (
    None,
    "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token/with+slashes==",
)
SECRET_IDS = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/toolbox/API_KEY-a1B2c3",
    "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:a:b/c-d_e.f-XyZ123",
    "team+a=b,c.d@e-f_g",
    "clé/ñandú/秘密/🔑",
)
TIMESTAMPS = (
    datetime.datetime(2026, 12, 1, 22, 28, 45),
    datetime.datetime(2024, 2, 29, 23, 59, 59),  # leap day, last second of the day
    datetime.datetime(2027, 1, 1, 0, 0, 0),
    datetime.datetime(2015, 8, 30, 12, 36, 0),  # the date of AWS's own SigV4 examples
)
CREDENTIALS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def botocore_headers(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    region: str,
    token: str | None,
    when: datetime.datetime,
) -> dict[str, str]:
    """The headers botocore's SigV4Auth gives the request at `when` (naive UTC)."""
    request = AWSRequest(method, url, dict(headers), body)
    auth = SigV4Auth(BotoCredentials(*CREDENTIALS, token), "secretsmanager", region)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        auth.add_auth(request)
    return dict(request.headers.items())


def ours(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    region: str,
    token: str | None,
    when: datetime.datetime,
) -> dict[str, str]:
    stamp = when.replace(tzinfo=datetime.UTC).timestamp()
    credentials = Credentials(*CREDENTIALS, token)
    return sign_v4(method, url, headers, body, region, "secretsmanager", credentials, stamp)


def assert_same(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    region: str,
    token: str | None,
    when: datetime.datetime,
) -> dict[str, str]:
    """Every header botocore sets (Authorization included) is ours, byte for byte, and the Host
    we send is the one botocore signs."""
    expected = botocore_headers(method, url, headers, body, region, token, when)
    got = ours(method, url, headers, body, region, token, when)
    if not any(name.lower() == "host" for name in headers):
        assert got.pop("Host") == _host_from_url(url)
    assert got == expected
    assert got["Authorization"] == expected["Authorization"]  # the point, spelt out
    return got


@pytest.mark.parametrize(
    ("region", "token", "secret_id", "when"),
    list(itertools.product(REGIONS, TOKENS, SECRET_IDS, TIMESTAMPS)),
)
def test_get_secret_value_is_signed_as_botocore_signs_it(
    region: str, token: str | None, secret_id: str, when: datetime.datetime
) -> None:
    url = secrets.endpoint_url({"AWS_REGION": region}) + "/"
    body = json.dumps({"SecretId": secret_id}).encode()
    fixed = {"Content-Type": secrets.CONTENT_TYPE, "X-Amz-Target": secrets.TARGET}
    got = assert_same("POST", url, fixed, body, region, token, when)
    signed = "content-type;host;x-amz-date;x-amz-target"
    if token:
        signed = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        assert got["X-Amz-Security-Token"] == token
    assert f"SignedHeaders={signed}," in got["Authorization"]
    assert got["X-Amz-Date"] == when.strftime("%Y%m%dT%H%M%SZ")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4566",  # no path at all
        "http://LocalHost:80/",  # default port dropped, host lower-cased
        "https://secretsmanager.eu-west-1.amazonaws.com:443/",
        "https://user:pw@example.com:8443/",  # no user info in Host
        "http://[::1]:8080/",
        "http://127.0.0.1:4566/prefix/a b/./c/../d//e/",  # dot segments, double slash, space
        "http://127.0.0.1:4566/%7Euser/%2Fencoded+plus:colon@at",  # encoded again
        "http://127.0.0.1:4566/秘密/ключ",
        "http://127.0.0.1:4566/?b=2&a=1&a=0&c",  # query sorted as botocore sorts it
    ],
)
@pytest.mark.parametrize(
    ("body", "extra"),
    [
        (b"", {}),
        (json.dumps({"SecretId": "clé 🔑"}, ensure_ascii=False).encode(), {}),
        (
            b'{"SecretId": "a"}',
            {
                "User-Agent": "not signed",
                "X-Amzn-Trace-Id": "Root=1-not-signed",
                "Connection": "keep-alive",
                "X-Custom": "  several   spaces\tand tab  ",
                "X-Amz-Date": "19990101T000000Z",  # replaced by the signing time
                "Authorization": "stale",  # replaced
            },
        ),
        (b"{}", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}),
        (b"{}", {"Host": "front.example:8443"}),  # a Host of the caller's is signed as is
    ],
)
@pytest.mark.parametrize("token", TOKENS)
def test_urls_headers_and_bodies_are_signed_as_botocore_signs_them(
    url: str, body: bytes, extra: dict[str, str], token: str | None
) -> None:
    headers = {"Content-Type": secrets.CONTENT_TYPE, "X-Amz-Target": secrets.TARGET, **extra}
    for method in ("POST", "GET"):
        assert_same(method, url, headers, body, "eu-west-1", token, TIMESTAMPS[0])


def test_a_stale_session_token_header_is_replaced() -> None:
    headers = {"X-Amz-Security-Token": "old", "Content-Type": secrets.CONTENT_TYPE}
    got = assert_same(
        "POST", "http://127.0.0.1:1/", headers, b"{}", "us-east-1", TOKENS[1], TIMESTAMPS[1]
    )
    assert got["X-Amz-Security-Token"] == TOKENS[1]


def test_aws_documented_example_signature() -> None:
    """AWS's published SigV4 example (GET iam ListUsers), as a check independent of botocore."""
    got = sign_v4(
        "GET",
        "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        b"",
        "us-east-1",
        "iam",
        Credentials(*CREDENTIALS),
        datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.UTC).timestamp(),
    )
    assert got["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )


# -- the endpoint ---------------------------------------------------------------------------


_LOADER = botocore.loaders.create_loader()  # service models, loaded once for every session


class _Seen(Exception):
    """Raised from botocore's before-send hook with the URL it would call."""


def botocore_endpoint(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The URL botocore would POST GetSecretValue to with `environ` as its environment."""
    with monkeypatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            patch.delenv(name)
        for name, value in {
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
            **environ,
        }.items():
            patch.setenv(name, value)
        session = botocore.session.Session()  # reads this environment
        session.register_component("data_loader", _LOADER)
        client = session.create_client(
            "secretsmanager", aws_access_key_id="a", aws_secret_access_key="b"
        )

        def capture(request: Any, **_: Any) -> None:
            raise _Seen(request.url)

        client.meta.events.register("before-send.secrets-manager.GetSecretValue", capture)
        with pytest.raises(_Seen) as seen:
            client.get_secret_value(SecretId="x")
    return str(seen.value).removesuffix("/")


ENDPOINT_REGIONS = (
    "us-east-1",
    "eu-west-1",
    "ap-southeast-7",
    "mx-central-1",
    "il-central-1",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-west-1",
    "us-gov-east-1",
    "us-iso-east-1",
    "us-isob-east-1",
    "eu-isoe-west-1",
    "us-isof-south-1",
    "eusc-de-east-1",
    "xx-unknown-9",  # no partition matches: aws, as botocore falls back
)


@pytest.mark.parametrize("region", ENDPOINT_REGIONS)
def test_the_endpoint_is_botocores(region: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for fips, dual in itertools.product(("false", "true"), repeat=2):
        environ = {
            "AWS_DEFAULT_REGION": region,  # botocore reads only this one
            "AWS_USE_FIPS_ENDPOINT": fips,
            "AWS_USE_DUALSTACK_ENDPOINT": dual,
        }
        try:
            expected = botocore_endpoint(environ, monkeypatch)
        except EndpointVariantError:
            # botocore's older endpoint table has no dual-stack entry for some partitions
            # (aws-iso-e, aws-iso-f) and fails before the rule set is asked; ours follows the
            # rule set.
            assert dual == "true" and region in ("eu-isoe-west-1", "us-isof-south-1")
            continue
        assert secrets.endpoint_url(environ) == expected, (fips, dual)
        assert secrets.endpoint_url({**environ, "AWS_REGION": region}) == expected


@pytest.mark.parametrize(
    "environ",
    [
        {"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:4566"},
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:4567"},
        {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:4566",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:4567",
        },
        {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:4566",
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
        },
    ],
)
def test_configured_endpoints_as_botocore_takes_them(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = {"AWS_DEFAULT_REGION": "eu-west-1", **environ}
    assert secrets.endpoint_url(environ) == botocore_endpoint(environ, monkeypatch)


def test_a_configured_endpoint_wins_over_fips_and_dualstack_as_in_botocore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environ = {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4567",
        "AWS_USE_FIPS_ENDPOINT": "true",
        "AWS_USE_DUALSTACK_ENDPOINT": "true",
    }
    assert secrets.endpoint_url(environ) == botocore_endpoint(environ, monkeypatch)
    assert secrets.endpoint_url(environ) == "http://127.0.0.1:4567"


# -- the environment ------------------------------------------------------------------------


def test_region_comes_from_aws_region_first() -> None:
    assert secrets.region_of({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}) == (
        "eu-west-1"
    )
    assert secrets.region_of({"AWS_DEFAULT_REGION": "us-east-1"}) == "us-east-1"
    for bad in ({}, {"AWS_REGION": "eu-west-1/../x"}, {"AWS_REGION": "-x"}):
        with pytest.raises(SecretsError, match="cannot read secrets"):
            secrets.region_of(bad)


def test_credentials_come_from_the_environment() -> None:
    environ = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "key"}
    assert secrets.credentials_of(environ) == Credentials("AKID", "key", None)
    assert secrets.credentials_of({**environ, "AWS_SESSION_TOKEN": "tok"}) == Credentials(
        "AKID", "key", "tok"
    )
    assert secrets.credentials_of({**environ, "AWS_SECURITY_TOKEN": "old"}).session_token == "old"
    with pytest.raises(SecretsError, match="only one of"):
        secrets.credentials_of({"AWS_ACCESS_KEY_ID": "AKID"})
    with pytest.raises(SecretsError, match="no AWS credentials"):
        secrets.credentials_of({})
    with pytest.raises(SecretsError, match="http is for loopback"):
        secrets.credentials_of({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://example.com/x"})


def test_read_secrets_checks_its_input_before_any_request() -> None:
    assert secrets.read_secrets({}, {}) == {}
    environ = {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    for arns in ({"A=B": "arn"}, {"": "arn"}, {"A": ""}):
        with pytest.raises(SecretsError, match="is not NAME → ARN"):
            secrets.read_secrets(arns, environ)
    with pytest.raises(SecretsError, match="not an http"):
        secrets.read_secrets({"A": "x"}, {**environ, "AWS_ENDPOINT_URL": "ftp://127.0.0.1/"})


# -- answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody+extra", (200, b"body")),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            (200, b"ok"),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            (200, b"abcde"),
        ),
        (b"HTTP/1.0 400 Bad\r\nX-Amzn-ErrorType: E\r\n\r\nto the end", (400, b"to the end")),
    ],
)
def test_http_answers_are_read(raw: bytes, expected: tuple[int, bytes]) -> None:
    status, _, data = transport._read_answer(io.BytesIO(raw))
    assert (status, data) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # the connection closed unanswered
        b"SSH-2.0-OpenSSH\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort",
    ],
)
def test_broken_answers_are_retryable_failures(raw: bytes) -> None:
    with pytest.raises(transport.Failure) as caught:
        transport._read_answer(io.BytesIO(raw))
    assert caught.value.retry


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        (
            {},
            b'{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException",'
            b'"Message":"Secrets Manager can\'t find the specified secret."}',
            ("ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
        ),
        (
            {"x-amzn-errortype": "AccessDeniedException:http://internal.amazon.com/"},
            b"",
            ("AccessDeniedException", ""),
        ),
        (
            {},
            b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code>"
            b"<Message>does not match</Message></Error></ErrorResponse>",
            ("SignatureDoesNotMatch", "does not match"),
        ),
        ({}, b"<html>bad gateway</html>", ("HTTP 502", "")),
        ({}, b'{"__type":"X","message":"line\\nbreak\\u0007' + b"m" * 400 + b'"}', None),
    ],
)
def test_aws_errors_are_read_on_one_line(
    headers: dict[str, str], body: bytes, expected: tuple[str, str] | None
) -> None:
    code, message = transport.aws_error(502, headers, body)
    if expected is None:
        assert code == "X"
        assert message.startswith("line break m") and message.endswith("...")
        assert len(message) == 303
    else:
        assert (code, message) == expected
