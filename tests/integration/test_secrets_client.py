"""The Lambda shim's SDK-free Secrets Manager client against real implementations on loopback.

- moto's server (its own process, 127.0.0.1 only): several secrets read in parallel (by full
  ARN, by ARN without its random suffix, by name), a missing secret, a binary one; and, on a
  second server with moto's IAM checks switched on, credentials of an assumed role: moto checks
  the signature with botocore and the session token, so the right credentials pass and a wrong
  secret key, session token or access key id, or a role without the permission, are refused.
- a relay in front of it that throttles (400 ThrottlingException, 429, 503) or drops the
  connection before answering: retried, then read; or failing after three attempts.
- the Lambda emulation's own stand-in (`targets/aws_lambda/secrets_local.py`), which checks
  the session token; with container credentials (as Lambda gives SnapStart functions) too.
Every error names the variable and the ARN, and never holds a secret value. Nothing but
127.0.0.1 is reached; the client reads only the environment mapping it is given.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3  # type: ignore[import-untyped]
import pytest

from targets.aws_lambda.secrets_local import Credentials, SecretsManagerStub, secret_arn
from targets.aws_lambda.shim.mcp_deploy_secrets import SecretsError, read_secrets
from tests.integration.test_s3_copy import moto_server
from tests.support.secrets_relay import Relay

pytestmark = pytest.mark.integration

REGION = "eu-west-1"
VALUES = {
    "API_KEY": "canary-api-key-7f3a91",
    "DB_URL": "postgres://user:p%40ss@db:5432/app?sslmode=require",
    "JSON_BLOB": json.dumps({"user": "ünïcødé", "key": "line1\nline2", "emoji": "🔑"}),
    "EMPTY_ISH": " ",
}


def admin(endpoint: str, service: str = "secretsmanager") -> Any:
    """A boto3 client for setting the server up (not the code under test)."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def lambda_environ(endpoint: str, **settings: str) -> dict[str, str]:
    """What Lambda gives a function (plus the endpoint of the server under test)."""
    return {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing-session-token",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        **settings,
    }


def assert_no_value_in(error: SecretsError) -> None:
    text = str(error) + repr(error.failures)
    for value in VALUES.values():
        if value.strip():
            assert value not in text


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto") / "server.log") as url:
        yield url


@pytest.fixture
def stored(moto: str) -> dict[str, str]:
    """VALUES stored in moto under fresh names: variable name → full ARN."""
    client, prefix = admin(moto), uuid.uuid4().hex[:8]
    return {
        name: client.create_secret(Name=f"{prefix}/{name}", SecretString=value)["ARN"]
        for name, value in VALUES.items()
    }


# -- moto ----------------------------------------------------------------------------------------


def test_several_secrets_are_read_in_parallel(moto: str, stored: dict[str, str]) -> None:
    """By full ARN, by ARN without its random suffix, by name: all read at once."""
    arns = dict(stored)
    arns["DB_URL"] = stored["DB_URL"][: -len("-abcdef")]  # partial ARN: no random suffix
    arns["EMPTY_ISH"] = stored["EMPTY_ISH"].split(":secret:", 1)[1][: -len("-abcdef")]  # name
    relay = Relay(moto, delay=0.5)
    with relay as endpoint:
        started = time.monotonic()
        values = read_secrets(arns, lambda_environ(endpoint))
        elapsed = time.monotonic() - started
    assert values == VALUES
    assert relay.peak == len(VALUES)  # all four in flight together
    assert elapsed < 0.5 * len(VALUES) * 0.75, elapsed  # one after the other: 2 s


def test_a_missing_secret_fails_naming_it(moto: str, stored: dict[str, str]) -> None:
    missing = stored["API_KEY"].replace("/API_KEY-", "/NOT_THERE-")
    with pytest.raises(SecretsError) as caught:
        read_secrets({**stored, "NOT_THERE": missing}, lambda_environ(moto))
    assert set(caught.value.failures) == {"NOT_THERE"}
    assert str(caught.value) == (
        f"cannot read secret NOT_THERE ({missing}) from Secrets Manager: "
        "ResourceNotFoundException: Secrets Manager can't find the specified secret. "
        "(hint: no such secret (or no such version) in this account and region: check the ARN)"
    )
    assert_no_value_in(caught.value)


def test_a_binary_secret_is_refused_saying_why(moto: str) -> None:
    arn = admin(moto).create_secret(Name=f"{uuid.uuid4().hex[:8]}/BIN", SecretBinary=b"\0\1")
    with pytest.raises(SecretsError) as caught:
        read_secrets({"CERT": arn["ARN"]}, lambda_environ(moto))
    assert f"cannot read secret CERT ({arn['ARN']})" in str(caught.value)
    assert "binary secret (SecretBinary)" in str(caught.value)
    assert "store it as a SecretString" in str(caught.value)


@pytest.mark.parametrize("fault", ["throttle", "429", "503", "drop"])
def test_throttling_and_transient_failures_are_retried(
    moto: str, stored: dict[str, str], fault: str
) -> None:
    relay = Relay(moto, faults=[fault, fault])
    with relay as endpoint:
        assert read_secrets(stored, lambda_environ(endpoint)) == VALUES
    for arn in stored.values():
        assert [action for seen, action in relay.seen if seen == arn] == [fault, fault, "pass"]


def test_three_attempts_then_the_error(moto: str, stored: dict[str, str]) -> None:
    relay = Relay(moto, faults=["throttle"] * 5)
    arns = {"API_KEY": stored["API_KEY"]}
    with relay as endpoint:
        started = time.monotonic()
        with pytest.raises(SecretsError) as caught:
            read_secrets(arns, lambda_environ(endpoint))
        elapsed = time.monotonic() - started
    assert [action for _, action in relay.seen] == ["throttle"] * 3
    assert str(caught.value) == (
        f"cannot read secret API_KEY ({stored['API_KEY']}) from Secrets Manager: "
        "ThrottlingException: Rate exceeded"
    )
    assert elapsed < 1.0  # backoff: at most 0.1 s then 0.2 s
    with relay as endpoint:  # AWS_MAX_ATTEMPTS, as the SDKs read it
        relay.seen.clear()
        with pytest.raises(SecretsError):
            read_secrets(arns, lambda_environ(endpoint, AWS_MAX_ATTEMPTS="1"))
    assert len(relay.seen) == 1


def test_an_unreachable_endpoint_is_named() -> None:
    from tests.support.net import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SecretsError) as caught:
        read_secrets({"API_KEY": "arn:x"}, lambda_environ(endpoint))
    assert str(caught.value).startswith(
        "cannot read secret API_KEY (arn:x) from Secrets Manager: cannot reach 127.0.0.1:"
    )


@pytest.fixture(scope="module")
def checking_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """moto with its IAM checks on (after set-up): a role allowed GetSecretValue, one that is
    not, the credentials of a session of each (AssumeRole: ASIA… key and a session token) and
    a secret."""
    with moto_server(tmp_path_factory.mktemp("moto-iam") / "server.log") as url:
        iam, sts = admin(url, "iam"), admin(url, "sts")
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:*"}],
        }
        sessions = {}
        for role, allowed in (("reader", True), ("other", False)):
            arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
            if allowed:
                # moto matches GetSecretValue against Resource "*" only (and fails on the
                # "-??????" suffix AWS documents), so the policy names no secret.
                statement = {
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                }
                policy = {"Version": "2012-10-17", "Statement": [statement]}
                iam.put_role_policy(
                    RoleName=role, PolicyName="read", PolicyDocument=json.dumps(policy)
                )
            session = sts.assume_role(RoleArn=arn["Role"]["Arn"], RoleSessionName="lambda")
            sessions[role] = session["Credentials"]
        secret = admin(url).create_secret(Name="app/API_KEY", SecretString=VALUES["API_KEY"])
        connection = http.client.HTTPConnection("127.0.0.1", urlsplit(url).port, timeout=10)
        connection.request("POST", "/moto-api/reset-auth", b"0", {"Content-Type": "text/plain"})
        assert connection.getresponse().status == 200
        connection.close()
        yield {"url": url, "sessions": sessions, "arn": secret["ARN"]}


def role_environ(server: dict[str, Any], role: str, **changes: str) -> dict[str, str]:
    session = server["sessions"][role]
    credentials = {
        "AWS_ACCESS_KEY_ID": session["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"],
        "AWS_SESSION_TOKEN": session["SessionToken"],
    }
    return lambda_environ(server["url"], **{**credentials, **changes})


def test_moto_checks_our_signature_and_session_token(checking_moto: dict[str, Any]) -> None:
    arns = {"API_KEY": checking_moto["arn"]}
    assert read_secrets(arns, role_environ(checking_moto, "reader")) == {
        "API_KEY": VALUES["API_KEY"]
    }


@pytest.mark.parametrize(
    ("role", "changes", "expected"),
    [
        (
            "reader",
            {"AWS_SECRET_ACCESS_KEY": "wrong-secret-access-key"},
            "SignatureDoesNotMatch: The request signature we calculated does not match",
        ),
        (
            "reader",
            {"AWS_SESSION_TOKEN": "wrong-session-token"},
            "InvalidClientTokenId: The security token included in the request is invalid.",
        ),
        (
            "reader",
            {"AWS_ACCESS_KEY_ID": "ASIAUNKNOWNUNKNOWN00"},
            "InvalidClientTokenId: The security token included in the request is invalid.",
        ),
        (
            "other",
            {},
            "AccessDenied: User: arn:aws:sts::123456789012:assumed-role/other/lambda is not "
            "authorized to perform: secretsmanager:GetSecretValue",
        ),
    ],
)
def test_wrong_credentials_are_refused_clearly(
    checking_moto: dict[str, Any], role: str, changes: dict[str, str], expected: str
) -> None:
    """moto answers in the query protocol's XML and codes (SignatureDoesNotMatch,
    InvalidClientTokenId, AccessDenied, HTTP 403) where AWS answers JSON
    (InvalidSignatureException, UnrecognizedClientException, AccessDeniedException, 400)."""
    arn = checking_moto["arn"]
    with pytest.raises(SecretsError) as caught:
        read_secrets({"API_KEY": arn}, role_environ(checking_moto, role, **changes))
    message = str(caught.value)
    assert message.startswith(f"cannot read secret API_KEY ({arn}) from Secrets Manager: ")
    assert expected in message
    hint = "were refused" if role == "reader" else "needs secretsmanager:GetSecretValue"
    assert hint in message
    assert_no_value_in(caught.value)


# -- the emulation's stand-in --------------------------------------------------------------------


@pytest.fixture
def stand_in() -> Iterator[tuple[SecretsManagerStub, Credentials, dict[str, str]]]:
    credentials = Credentials.generate()
    arns = {name: secret_arn(REGION, "toolbox", name) for name in VALUES}
    running = SecretsManagerStub(
        {arns[name]: value for name, value in VALUES.items()}, credentials, peer=None
    ).start()
    yield running, credentials, arns
    running.stop()


def test_the_whole_read_against_the_stand_in(
    stand_in: tuple[SecretsManagerStub, Credentials, dict[str, str]],
) -> None:
    running, credentials, arns = stand_in
    environ = {**lambda_environ(running.endpoint), **credentials.environment()}
    assert read_secrets(arns, environ) == VALUES
    missing = secret_arn(REGION, "toolbox", "MISSING")
    with pytest.raises(SecretsError) as caught:
        read_secrets({**arns, "MISSING": missing}, environ)
    assert set(caught.value.failures) == {"MISSING"}
    assert "ResourceNotFoundException" in str(caught.value)


def test_the_stand_in_refuses_another_session_token(
    stand_in: tuple[SecretsManagerStub, Credentials, dict[str, str]],
) -> None:
    running, credentials, arns = stand_in
    environ = {
        **lambda_environ(running.endpoint),
        **credentials.environment(),
        "AWS_SESSION_TOKEN": "not-this-run's",
    }
    with pytest.raises(SecretsError) as caught:
        read_secrets(arns, environ)
    assert set(caught.value.failures) == set(VALUES)
    assert caught.value.failures["API_KEY"] == (
        f"cannot read secret API_KEY ({arns['API_KEY']}) from Secrets Manager: "
        "UnrecognizedClientException: The security token included in the request is invalid. "
        "(hint: the credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / "
        "AWS_SESSION_TOKEN were refused)"
    )
    assert_no_value_in(caught.value)


def credentials_server(credentials: Credentials, token: str) -> ThreadingHTTPServer:
    """A container credentials endpoint (as Lambda runs one for SnapStart functions) that
    answers `credentials` to a GET whose Authorization header is `token`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            status, data = 403, b'{"message": "bad token"}'
            if self.headers.get("Authorization") == token and self.path == "/2021-04-23/creds":
                status, data = (
                    200,
                    json.dumps(
                        {
                            "AccessKeyId": credentials.access_key_id,
                            "SecretAccessKey": credentials.secret_access_key,
                            "Token": credentials.session_token,
                            "Expiration": "2099-01-01T00:00:00Z",
                        }
                    ).encode(),
                )
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_container_credentials_as_snapstart_functions_get_them(
    stand_in: tuple[SecretsManagerStub, Credentials, dict[str, str]], tmp_path: Path
) -> None:
    running, credentials, arns = stand_in
    server = credentials_server(credentials, "container-token")
    uri = f"http://127.0.0.1:{server.server_address[1]}/2021-04-23/creds"
    environ = {
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": running.endpoint,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": uri,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-token",
    }
    try:
        assert read_secrets(arns, environ) == VALUES
        token_file = tmp_path / "token"
        token_file.write_text("container-token\n")
        from_file = {
            **environ,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "overridden by the file",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        }
        assert read_secrets(arns, from_file) == VALUES
        with pytest.raises(SecretsError) as caught:
            read_secrets(arns, {**environ, "AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong"})
        assert str(caught.value) == (
            f"cannot read secrets: no container credentials from {uri}: HTTP 403"
        )
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"SecretString": "before\0" + VALUES["API_KEY"]}, "holds a NUL character"),
        ({"Name": "x"}, "the answer has no SecretString"),
        ([VALUES["API_KEY"]], "the answer has no SecretString"),
    ],
)
def test_answers_an_environment_variable_cannot_take(answer: Any, expected: str) -> None:
    """A 200 that does not give a usable SecretString is an error naming the secret, not its
    value."""
    data = json.dumps(answer).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(SecretsError) as caught:
            read_secrets({"API_KEY": "arn:x"}, lambda_environ(endpoint))
    finally:
        server.shutdown()
        server.server_close()
    assert str(caught.value).startswith("cannot read secret API_KEY (arn:x) from Secrets Manager: ")
    assert expected in str(caught.value)
    assert_no_value_in(caught.value)
