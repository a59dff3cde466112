"""Package a binary server (`server.runtime = "binary"`) as a Lambda zip for the OS-only
runtime `provided.al2023`.

Lambda runs `/var/task/bootstrap`: here mcp-deploy's launcher (`orchestrator.build.binary`),
which reads the secrets, starts the server (`bin/<name>`) and listens where AWS's Lambda Web
Adapter sends each Function URL request as HTTP (the adapter is AWS's own layer in the cloud,
and the same adapter built from its crate in the local emulation; the program attaches it).

The executable is checked against what provided.al2023 offers before anything is written:
glibc 2.34 (Amazon Linux 2023) and libgcc_s; a server needing a newer glibc or another shared
library is refused with the fix (link it statically, e.g. the musl target or rustls).
"""

from __future__ import annotations

from pathlib import Path

from orchestrator import __version__
from orchestrator.artifacts import Artifact
from orchestrator.build.archive import build_epoch, write_zip_within
from orchestrator.build.binary import binary_part
from orchestrator.build.context import BuildContext, InputsHash
from orchestrator.build.elf import Provided, needs_problems
from orchestrator.errors import input_error
from targets.aws_lambda import LambdaOptions
from targets.aws_lambda.package import zip_limits

LAUNCHER_NAME = "bootstrap"
# What the provided.al2023 execution environment offers a dynamic executable: Amazon Linux
# 2023's glibc (2.34) and the GCC runtime that Rust's unwinder links.
PROVIDED_AL2023 = Provided(
    name="Lambda's provided.al2023 runtime",
    libraries=frozenset({"libgcc_s.so.1"}),
    glibc=(2, 34),
)


def package_binary_lambda(context: BuildContext, options: LambdaOptions) -> Artifact:
    """Build (or find in the store) the provided.al2023 zip of the spec's binary server."""
    inputs = InputsHash("lambda-zip")
    inputs.add("mcp-deploy", __version__)
    inputs.add("epoch", str(build_epoch()))
    settings = {arch: f'targets.lambda.arch = "{arch}"' for arch in ("x86_64", "arm64")}
    part = binary_part(context, options.arch, settings, inputs)
    problems = needs_problems(part.executable, PROVIDED_AL2023)
    if problems:
        raise input_error(
            "server.binary",
            f"{context.loaded.spec.server.binary} would not start on Lambda: "
            + "; ".join(problems),
            "link it statically (Rust: the x86_64/aarch64-unknown-linux-musl target, or "
            "rustls instead of OpenSSL; Go: CGO_ENABLED=0), or deploy it to Cloud Run with a "
            "base that has the libraries (targets.cloudrun.base)",
        )
    inputs_hash, cached = context.stored("lambda-zip", inputs, "zip")
    if cached is not None:
        return cached
    with context.store.scratch("lambda") as scratch:
        context.progress("writing the zip")
        zip_path = Path(scratch) / "lambda.zip"
        limits = zip_limits(
            "build the server with size in mind (strip symbols, opt-level 's'), or deploy to "
            "Cloud Run (no such limit)"
        )
        write_zip_within(part.entries(LAUNCHER_NAME), zip_path, limits)
        return context.store.keep(zip_path, "lambda-zip", "lambda", inputs_hash)
