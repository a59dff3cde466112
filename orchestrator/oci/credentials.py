"""Registry credentials the way docker finds them: `$DOCKER_CONFIG/config.json` (default
`~/.docker/config.json`) — `credHelpers[registry]`, then `credsStore`, then `auths[registry]`.
Credential helpers are the `docker-credential-<name>` programs docker itself uses."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path


def _config() -> dict[str, object]:
    path = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _from_helper(helper: str, registry: str) -> tuple[str, str] | None:
    try:
        done = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=registry,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    try:
        answer = json.loads(done.stdout)
        return str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        return None


def credentials_for(registry: str) -> tuple[str, str] | None:
    """(username, secret) for `registry`, or None for anonymous access."""
    config = _config()
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict) and isinstance(helpers.get(registry), str):
        return _from_helper(helpers[registry], registry)
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        found = _from_helper(store, registry)
        if found:
            return found
    auths = config.get("auths")
    entry = auths.get(registry) if isinstance(auths, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("auth"), str):
        user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
        return user, secret
    return None
