"""Name rules shared by the spec and every target.

Every cloud resource is named `<server>-<env>` (plus short suffixes). The limits below make
that fit the tightest provider rule we use: a Cloud Run service name has at most 49
characters, so a server name has at most 32 and an environment name at most 16
(32 + 1 + 16 = 49). Lambda function and IAM role names (64) and Workers script names (63)
then fit too; resources with tighter limits (GCP service account ids, 30) are shortened with
a hash by the stacks that create them.
"""

from __future__ import annotations

import re

MAX_RESOURCE_NAME = 49
MAX_SERVER_NAME = 32
MAX_ENV_NAME = 16

DNS_LABEL = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

LOCAL_ENV = "local"

# Set by the platforms themselves or by mcp-deploy's runtime shims: a server may not
# configure them, because the value would be overwritten or rejected at deploy time.
RESERVED_ENV_VARS = frozenset(
    {
        "PORT",
        "K_SERVICE",
        "K_REVISION",
        "K_CONFIGURATION",
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "TZ",
        "PATH",
        "HOME",
        "PYTHONPATH",
        "LD_LIBRARY_PATH",
    }
)
RESERVED_ENV_PREFIXES = ("AWS_", "LAMBDA_", "X_AMZN_", "CF_", "MCP_DEPLOY_")


def dns_label_problem(value: str, *, max_length: int, what: str) -> str | None:
    """Why `value` is not a DNS-safe label of at most `max_length`, or None when it is."""
    if not value:
        return f"{what} must not be empty"
    if len(value) > max_length:
        return f"{what} has {len(value)} characters; at most {max_length} fit every provider"
    if not DNS_LABEL.match(value):
        return (
            f"{what} must be DNS-safe: lowercase letters, digits and '-', "
            "starting with a letter and not ending with '-'"
        )
    return None


def env_var_problem(name: str) -> str | None:
    """Why `name` cannot be an environment variable set by mcp-deploy, or None when it can."""
    if not ENV_VAR.match(name):
        return "must be a valid environment variable name (letters, digits, '_'; no leading digit)"
    upper = name.upper()
    if upper in RESERVED_ENV_VARS or upper.startswith(RESERVED_ENV_PREFIXES):
        return "is reserved by a target platform or by mcp-deploy's runtime"
    return None


def suggest_dns_label(raw: str, *, max_length: int = MAX_SERVER_NAME) -> str:
    """Best-effort DNS-safe name derived from `raw` (a directory name, say); may be empty."""
    lowered = re.sub(r"[^a-z0-9-]+", "-", raw.lower())
    trimmed = lowered.lstrip("-0123456789")[:max_length]
    return trimmed.strip("-")
