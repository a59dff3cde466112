"""The IAM documents of the Lambda program, as plain data (no provider SDK here).

- `TRUST_POLICY`: the execution role is assumed by lambda.amazonaws.com only.
- `execution_policy(...)`: the role's one inline policy, least privilege: write to its own log
  group, read exactly its own secrets, and (only when a customer key is named and there are
  secrets) `kms:Decrypt` on exactly that key, through Secrets Manager in the function's region.
- `KmsKey.parse(arn)`: a customer managed key named by key ARN or alias ARN. IAM matches a key
  by its key ARN only, so an alias ARN is granted as "any key of that account and region that
  has this alias" (`kms:ResourceAliases`), which is the same key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import OperationError

# arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[-XXXXXX]
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:(.+)$")
_RANDOM_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")
# arn:PARTITION:kms:REGION:ACCOUNT:key/ID | alias/NAME (the option's own pattern checks more)
_KMS_ARN = re.compile(r"^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):(key|alias)/(.+)$")
# Region prefix -> partition, for the regions outside `aws` (AWS General Reference).
_PARTITIONS = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-iso-", "aws-iso"),
)

TRUST_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def partition(region: str) -> str:
    """The ARN partition of `region` (`aws`, `aws-cn`, `aws-us-gov`, ...)."""
    for prefix, name in _PARTITIONS:
        if region.startswith(prefix):
            return name
    return "aws"


@dataclass(frozen=True)
class KmsKey:
    """A customer managed KMS key as the option `targets.lambda.secrets_kms_key` names it."""

    arn: str
    partition: str
    region: str
    account: str
    alias: str | None  # "alias/NAME" when named by alias ARN, else None

    @classmethod
    def parse(cls, arn: str, region: str) -> KmsKey:
        """The key named by `arn`, which must be in `region` (Secrets Manager uses keys of its
        own region): `OperationError` naming the option otherwise."""
        match = _KMS_ARN.match(arn)
        if match is None:
            raise OperationError(
                f"targets.lambda.secrets_kms_key is not a KMS key or alias ARN: {arn}",
                hint="name the key as arn:aws:kms:REGION:ACCOUNT:key/ID or "
                "arn:aws:kms:REGION:ACCOUNT:alias/NAME",
            )
        part, key_region, account, kind, rest = match.groups()
        if key_region != region:
            raise OperationError(
                f"targets.lambda.secrets_kms_key is in {key_region}, the function in {region}",
                hint="Secrets Manager uses keys of its own region: name a key (or a "
                "multi-Region replica) in the function's region",
            )
        alias = f"alias/{rest}" if kind == "alias" else None
        return cls(arn, part, key_region, account, alias)

    def statement(self) -> dict[str, Any]:
        """`kms:Decrypt` on exactly this key, and only when Secrets Manager in the key's region
        asks on the function's behalf (`kms:ViaService`)."""
        condition: dict[str, Any] = {
            "StringEquals": {"kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"}
        }
        if self.alias is None:
            resource = self.arn
        else:
            # an alias ARN matches no key in IAM: grant the account's keys that carry the alias
            resource = f"arn:{self.partition}:kms:{self.region}:{self.account}:key/*"
            condition["ForAnyValue:StringEquals"] = {"kms:ResourceAliases": self.alias}
        return {
            "Sid": "SecretsKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": [resource],
            "Condition": condition,
        }


def execution_policy(
    log_group_arn: str, secret_arns: list[str], kms_key: KmsKey | None = None
) -> dict[str, Any]:
    """The function's inline policy: write to its own log group, read its own secrets, and
    decrypt them with `kms_key` when one is named (no secrets: no key statement either)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{log_group_arn}:*"],
        }
    ]
    if secret_arns:
        statements.append(
            {
                "Sid": "Secrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": sorted(secret_resource(arn) for arn in secret_arns),
            }
        )
        if kms_key is not None:
            statements.append(kms_key.statement())
    return {"Version": "2012-10-17", "Statement": statements}


def secret_resource(arn: str) -> str:
    """The IAM resource for a secret ARN: a partial ARN (no `-XXXXXX` random suffix) matches
    the real one only with `-??????`. A name that itself ends in `-` and six letters or digits
    is taken as complete (AWS documents the same ambiguity); such a grant fails closed."""
    match = SECRET_ARN.match(arn)
    if match and not _RANDOM_SUFFIX.search(match.group(2)):
        return f"{arn}-??????"
    return arn
