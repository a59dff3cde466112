"""Secret references: where a secret's value comes from, never the value itself.

Accepted forms:
- `env:NAME` — an environment variable of the process that runs mcp-deploy;
- `file:PATH` — a file (relative paths are relative to the spec file's directory);
- `aws-sm://ARN` — an AWS Secrets Manager secret ARN;
- `gcp-sm://projects/P/secrets/S/versions/V` — a GCP Secret Manager version (V a number or
  `latest`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Scheme = Literal["env", "file", "aws-sm", "gcp-sm"]

LOCAL_SCHEMES: frozenset[Scheme] = frozenset({"env", "file"})

FORMS = "env:NAME, file:PATH, aws-sm://ARN or gcp-sm://projects/P/secrets/S/versions/V"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_AWS_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$"
)
_GCP_VERSION = re.compile(
    r"^projects/[a-z0-9][a-z0-9-]{0,62}/secrets/[A-Za-z0-9_-]{1,255}/versions/(?:[1-9]\d*|latest)$"
)

# Shown in JSON Schema so editors can check references as they are typed.
PATTERN = r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+|aws-sm://arn:.+|gcp-sm://projects/.+)$"


class SecretRefError(ValueError):
    """A string that is not a valid secret reference. Its message never repeats the input."""


@dataclass(frozen=True)
class SecretRef:
    """A pointer to a secret value. `str()` gives the reference; there is no value to show."""

    scheme: Scheme
    location: str

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """Parse a reference; raise `SecretRefError` (without echoing `text`) when invalid."""
        if text.startswith("env:"):
            name = text[len("env:") :]
            if not _ENV_NAME.match(name):
                raise SecretRefError("env: must be followed by an environment variable name")
            return cls("env", name)
        if text.startswith("file:"):
            path = text[len("file:") :]
            if not path.strip() or "\x00" in path:
                raise SecretRefError("file: must be followed by a path")
            return cls("file", path)
        if text.startswith("aws-sm://"):
            arn = text[len("aws-sm://") :]
            if not _AWS_ARN.match(arn):
                raise SecretRefError(
                    "aws-sm:// must be followed by a Secrets Manager ARN "
                    "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
                )
            return cls("aws-sm", arn)
        if text.startswith("gcp-sm://"):
            version = text[len("gcp-sm://") :]
            if not _GCP_VERSION.match(version):
                raise SecretRefError(
                    "gcp-sm:// must be followed by projects/P/secrets/S/versions/V "
                    "(V a version number or 'latest')"
                )
            return cls("gcp-sm", version)
        raise SecretRefError(
            f"not a secret reference; use {FORMS}. Never write a secret's value in the spec"
        )

    @property
    def is_local(self) -> bool:
        """True when the value can be read on this machine without cloud credentials."""
        return self.scheme in LOCAL_SCHEMES

    def __str__(self) -> str:
        separator = ":" if self.scheme in LOCAL_SCHEMES else "://"
        return f"{self.scheme}{separator}{self.location}"

    def __repr__(self) -> str:
        return f"SecretRef({str(self)!r})"
