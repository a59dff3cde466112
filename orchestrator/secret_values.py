"""Read secret values from local sources (`env:`, `file:`), at the last moment, in memory.

Values are returned to the caller and nowhere else: never logged, never part of an error
message (errors name the secret and its source only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from orchestrator.errors import InputError, Issue
from orchestrator.secret_refs import SecretRef


def read_secrets(refs: Mapping[str, SecretRef], base_dir: Path, environment: str) -> dict[str, str]:
    """Every secret's value; one `InputError` listing every secret that cannot be read."""
    values: dict[str, str] = {}
    issues: list[Issue] = []
    for name, ref in sorted(refs.items()):
        where = f"environments.{environment}.secrets.{name}"
        if ref.scheme == "env":
            value = os.environ.get(ref.location, "")
            if not value:
                issues.append(
                    Issue(
                        where,
                        f"environment variable {ref.location} is not set or empty ({ref})",
                        f"export {ref.location}=<value> first, or point {name} at another source",
                    )
                )
                continue
            values[name] = value
        elif ref.scheme == "file":
            path = Path(ref.location).expanduser()
            path = path if path.is_absolute() else base_dir / path
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
                issues.append(
                    Issue(where, f"cannot read {path} ({reason})", "create it or fix the path")
                )
                continue
            value = text[:-1] if text.endswith("\n") else text
            if not value:
                issues.append(Issue(where, f"{path} is empty", "write the secret's value in it"))
                continue
            values[name] = value
        else:
            issues.append(
                Issue(
                    where,
                    f"{ref} cannot be read on this machine",
                    "local runs read env: and file: sources only",
                )
            )
    if issues:
        raise InputError(issues)
    return values
