"""AWS's Lambda Web Adapter as a layer for the local Lambda emulation, built from its crate.

In the cloud, a binary server's function (runtime `provided.al2023`) carries AWS's published
layer `arn:aws:lambda:<region>:753240598075:layer:LambdaAdapterLayerX86:25` (or
`...:LambdaAdapterLayerArm64:25`), which unpacks into /opt as

- `/opt/extensions/lambda-adapter`: the adapter, an external extension that also acts as the
  runtime client, forwarding each event as an HTTP request to the web app;
- `/opt/bootstrap`: a wrapper script (`exec -- "${LAMBDA_TASK_ROOT}/${_HANDLER}"`), the runtime
  Lambda starts when the zip has no `bootstrap` of its own.

Locally the same adapter comes from the crate `lambda_web_adapter` of the version that layer
was published from, built once per machine with `cargo install --locked` (its own lock file:
the dependency versions of the release) into the mcp-deploy cache. Differences from the
published layer: it is built for this machine's architecture only (all the local emulation
runs), against this machine's C library (the published binary is a static musl build), and
with the same `LAMBDA_RUNTIME_USER_AGENT` the release build sets.

`web_adapter_layer(progress)` returns the layer directory, building it first when it is not in
the cache. Concurrent builders (two deployments at once) serialise on a lock file; each build
happens in a temporary directory that is renamed into place, so a reader never sees half a
layer.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import OperationError
from orchestrator.paths import cache_root
from targets.base import host_architecture

# The crate version AWS published as layer version 25 (LambdaAdapterLayerX86:25 and
# LambdaAdapterLayerArm64:25): change both together, with the cloud program's layer ARN
# (WEB_ADAPTER_LAYER_VERSION in stacks/_aws_lambda_runtime.py).
WEB_ADAPTER_VERSION = "0.9.1"
LAYER_VERSION = 25
CRATE = "lambda_web_adapter"
BINARY = "lambda-adapter"
EXTENSION_NAME = "lambda-adapter"  # the file name in /opt/extensions: the name it registers as
# /opt/bootstrap of the published layer (its `layer/bootstrap`), byte for byte.
WRAPPER = '#!/bin/bash\n\nexec -- "${LAMBDA_TASK_ROOT}/${_HANDLER}"'
BUILD_MINUTES = 1.5
_OUTPUT_TAIL = 3000  # characters of cargo's output shown when the build fails


def layer_directory() -> Path:
    """Where the layer of this machine's architecture lives (whether built yet or not)."""
    return cache_root() / "lambda-web-adapter" / f"{WEB_ADAPTER_VERSION}-{host_architecture()}"


def _complete(layer: Path) -> bool:
    adapter = layer / "extensions" / EXTENSION_NAME
    return os.access(adapter, os.X_OK) and (layer / "bootstrap").is_file()


def web_adapter_layer(progress: Callable[[str], None]) -> Path:
    """The Lambda Web Adapter layer directory (`extensions/lambda-adapter`, `bootstrap`),
    built from crates.io the first time (`progress` says so; about a minute and a half).

    Raises `OperationError` when cargo is missing or the build fails (with the tail of
    cargo's output as detail)."""
    layer = layer_directory()
    if _complete(layer):
        return layer
    layer.parent.mkdir(parents=True, exist_ok=True)
    with (layer.parent / f".{layer.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it: wait for it
        if _complete(layer):
            return layer
        cargo = _cargo()
        progress(
            f"building AWS Lambda Web Adapter {WEB_ADAPTER_VERSION} from crates.io "
            f"(once per machine, ~{BUILD_MINUTES} min)"
        )
        with tempfile.TemporaryDirectory(prefix=f".{layer.name}.", dir=layer.parent) as scratch:
            staged = _build(cargo, Path(scratch))
            shutil.rmtree(layer, ignore_errors=True)  # an incomplete leftover, if any
            staged.rename(layer)
    return layer


def _cargo() -> str:
    """cargo on PATH, else where rustup puts it."""
    found = shutil.which("cargo")
    if found:
        return found
    home = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
    candidate = home / "bin" / "cargo"
    if os.access(candidate, os.X_OK):
        return str(candidate)
    raise OperationError(
        f"the local Lambda emulation of a binary server needs AWS's Lambda Web Adapter, "
        f"built from the crate {CRATE} {WEB_ADAPTER_VERSION}, and cargo is not installed",
        hint="install Rust (https://rustup.rs: `rustup` gives cargo), then deploy again",
    )


def _build(cargo: str, scratch: Path) -> Path:
    """Build the adapter under `scratch` and lay the layer out there; returns that directory."""
    root = scratch / "cargo-root"
    env = dict(os.environ)
    env["CARGO_TARGET_DIR"] = str(scratch / "target")
    # What the release build sets (its Makefile): the User-Agent of its Runtime API calls.
    env["LAMBDA_RUNTIME_USER_AGENT"] = f"aws-lambda-rust/aws-lambda-adapter/{WEB_ADAPTER_VERSION}"
    argv = [
        cargo,
        "install",
        CRATE,
        "--version",
        WEB_ADAPTER_VERSION,
        "--locked",
        "--root",
        str(root),
    ]
    try:
        done = subprocess.run(
            argv,
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
    except OSError as error:
        raise OperationError(f"could not run cargo ({cargo}): {error}") from None
    built = root / "bin" / BINARY
    if done.returncode != 0 or not built.is_file():
        output = (done.stderr + done.stdout).strip()
        raise OperationError(
            f"building AWS Lambda Web Adapter {WEB_ADAPTER_VERSION} ({CRATE} from crates.io) "
            f"failed (cargo exit status {done.returncode})",
            hint="cargo must reach crates.io; `cargo install "
            f"{CRATE} --version {WEB_ADAPTER_VERSION} --locked` shows the whole output",
            detail=output[-_OUTPUT_TAIL:],
        )
    staged = scratch / "layer"
    (staged / "extensions").mkdir(parents=True)
    shutil.copy2(built, staged / "extensions" / EXTENSION_NAME)
    os.chmod(staged / "extensions" / EXTENSION_NAME, 0o755)
    (staged / "bootstrap").write_text(WRAPPER)
    os.chmod(staged / "bootstrap", 0o755)
    return staged
