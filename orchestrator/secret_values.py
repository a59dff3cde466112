"""Read secret values from local sources (`env:`, `file:`), at the last moment, in memory.

Values are returned to the caller and nowhere else: never logged, never part of an error
message (errors name the secret and its source only).

A `file:` source must be a regular file of at most `MAX_SECRET_BYTES` (64 KiB), UTF-8 text; a
FIFO or device (`file:/dev/zero`) is refused without being read. A relative path is relative
to the spec's directory and `~` is expanded (`secret_file_path`). `secret_files` lists every
file any environment names, so that builds keep them out of every artifact.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import InputError, Issue
from orchestrator.secret_refs import SecretRef

if TYPE_CHECKING:
    from orchestrator.spec.model import ServerSpec

MAX_SECRET_BYTES = 64 << 10


def secret_file_path(ref: SecretRef, base_dir: Path) -> Path:
    """Where a `file:` reference points: `~` expanded, relative to `base_dir` (the spec's
    directory); not resolved (symlinks kept)."""
    path = Path(ref.location)
    with contextlib.suppress(RuntimeError):  # no home directory: `~` stays as written
        path = path.expanduser()
    return path if path.is_absolute() else base_dir / path


def secret_files(spec: ServerSpec, base_dir: Path) -> dict[Path, tuple[str, ...]]:
    """Every file a `file:` source names, in a declaration or in any environment, resolved
    (symlinks followed) → the spec key path of its first mention. The files need not exist."""
    mentions: list[tuple[tuple[str, ...], SecretRef | None]] = [
        (("secrets", name, "source"), declared.source) for name, declared in spec.secrets.items()
    ]
    for env_name, env in spec.environments.items():
        for name, source in env.secrets.items():
            mentions.append((("environments", env_name, "secrets", name), source))
    found: dict[Path, tuple[str, ...]] = {}
    for loc, ref in mentions:
        if ref is None or ref.scheme != "file":
            continue
        try:
            resolved = secret_file_path(ref, base_dir).resolve()
        except (OSError, ValueError, RuntimeError):
            continue
        found.setdefault(resolved, loc)
    return found


def _read_file(path: Path) -> str:
    """The text of a secret file; `ValueError` with the reason (never the content)."""
    from orchestrator.files import UnreadableFile, read_regular_file

    try:
        data = read_regular_file(path, MAX_SECRET_BYTES)
    except UnreadableFile as problem:
        reason = problem.reason
        if reason.startswith("is larger"):
            reason += " (a secret file holds only the value)"
        raise ValueError(reason) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None


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
            path = secret_file_path(ref, base_dir)
            try:
                text = _read_file(path)
            except ValueError as error:
                hint = (
                    "create it or fix the path"
                    if str(error) == "does not exist"
                    else "point it at a regular file that holds only the value"
                )
                issues.append(Issue(where, f"cannot read {path}: {error}", hint))
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
