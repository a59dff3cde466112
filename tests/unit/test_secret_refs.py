"""Secret references parse strictly and never echo what they were given."""

from __future__ import annotations

import pytest

from orchestrator.secret_refs import SecretRef, SecretRefError

CANARY = "canary-8c1f4a9e-not-a-reference"


@pytest.mark.parametrize(
    ("text", "scheme", "location"),
    [
        ("env:API_KEY", "env", "API_KEY"),
        ("file:secrets/key.txt", "file", "secrets/key.txt"),
        (
            "aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/key-AbCdEf",
            "aws-sm",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/key-AbCdEf",
        ),
        (
            "gcp-sm://projects/acme/secrets/weather/versions/3",
            "gcp-sm",
            "projects/acme/secrets/weather/versions/3",
        ),
        (
            "gcp-sm://projects/acme/secrets/w/versions/latest",
            "gcp-sm",
            "projects/acme/secrets/w/versions/latest",
        ),
    ],
)
def test_round_trip(text: str, scheme: str, location: str) -> None:
    ref = SecretRef.parse(text)
    assert (ref.scheme, ref.location) == (scheme, location)
    assert str(ref) == text
    assert repr(ref) == f"SecretRef({text!r})"


@pytest.mark.parametrize(
    "text",
    [
        CANARY,
        "env:" + CANARY,
        "file:",
        "aws-sm://" + CANARY,
        "gcp-sm://projects/acme/secrets/" + CANARY,
        "gcp-sm://projects/acme/secrets/s/versions/0",
    ],
)
def test_invalid_references_do_not_echo_input(text: str) -> None:
    with pytest.raises(SecretRefError) as caught:
        SecretRef.parse(text)
    assert CANARY not in str(caught.value)


def test_only_env_and_file_are_local() -> None:
    assert SecretRef.parse("env:A").is_local and SecretRef.parse("file:a").is_local
    assert not SecretRef.parse("gcp-sm://projects/acme/secrets/s/versions/1").is_local
