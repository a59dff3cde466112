"""Package a server as a Lambda zip: vendored dependencies + the app + the runtime shim.

Layout at the zip root (`/var/task` at run time, which Lambda puts on sys.path):
the vendored packages, the server's selected files, `mcp_deploy_lambda.py` (the handler) and
`mcp_deploy_runtime.json` (entry, paths, auth mode: no environment config, no secrets). Every
.py has an unchecked-hash .pyc compiled by the target's Python, so cold starts skip
compilation even though the task directory is read-only. With `bytecode_only`, the vendored
packages ship as bytecode only (`foo.pyc` in place of `foo.py`; the app and shims keep theirs).
"""

from __future__ import annotations

from pathlib import Path

from orchestrator import __version__
from orchestrator.artifacts import Artifact
from orchestrator.build.app import AppPart, requirements_origin, shim_requirements
from orchestrator.build.archive import Entry, SizeLimits, build_epoch, write_zip_within
from orchestrator.build.context import BuildContext, InputsHash
from orchestrator.build.vendor import find_requirements, vendor
from orchestrator.errors import OperationError
from targets.aws_lambda import LambdaOptions

TASK_ROOT = "/var/task"
HANDLER = "mcp_deploy_lambda.handler"
SHIM = Path(__file__).with_name("shim") / "mcp_deploy_lambda.py"
# Read the secrets at cold start with a SigV4-signed GetSecretValue, without boto3.
SECRETS_SHIMS = tuple(
    Path(__file__).with_name("shim") / name
    for name in ("mcp_deploy_secrets.py", "mcp_deploy_secrets_http.py")
)
SHIM_REQUIREMENTS = ("mangum==0.22.0",)

# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
MAX_ZIPPED = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024


def package_lambda(context: BuildContext, options: LambdaOptions) -> Artifact:
    """Build (or find in the store) the Lambda zip for the spec's server."""
    spec = context.loaded.spec
    python = spec.server.python
    found = find_requirements(context.project_dir)
    requirements = (
        *(found.lines if found else ()),
        *SHIM_REQUIREMENTS,
        *shim_requirements(context),
    )
    origin = requirements_origin(context, str(found.origin) if found else "the Lambda shim")

    context.progress(f"vendoring dependencies for {options.arch}, Python {python}")
    site, vendor_key = vendor(
        requirements,
        arch=options.arch,
        python=python,
        prefix=TASK_ROOT,
        origin=origin,
        bytecode_only=options.bytecode_only,
    )
    inputs = InputsHash("lambda-zip")
    inputs.add("mcp-deploy", __version__)
    inputs.add("vendor", vendor_key)
    inputs.add("epoch", str(build_epoch()))
    app = AppPart(context, [SHIM, *SECRETS_SHIMS], inputs)
    inputs_hash, cached = context.stored("lambda-zip", inputs, "zip")
    if cached is not None:
        return cached

    context.progress("compiling the app")
    with context.store.scratch("lambda") as scratch:
        stage = app.stage(Path(scratch) / "app", TASK_ROOT)

        entries = _entries(site) | _entries(stage, clash_with=site)
        context.progress("writing the zip")
        zip_path = Path(scratch) / "lambda.zip"
        limits = zip_limits(
            "drop unneeded dependencies, exclude files with server.exclude, or deploy "
            "to Cloud Run (no such limit)"
        )
        write_zip_within(entries.values(), zip_path, limits)
        return context.store.keep(zip_path, "lambda-zip", "lambda", inputs_hash)


def zip_limits(hint: str) -> SizeLimits:
    """Lambda's limits on a zip uploaded directly, with how to get under them."""
    return SizeLimits(
        what="the Lambda package",
        allowed_by="Lambda allows",
        max_uncompressed=MAX_UNZIPPED,
        max_compressed=MAX_ZIPPED,
        compressed_note=" for a direct upload",
        hint=hint,
    )


def _entries(root: Path, clash_with: Path | None = None) -> dict[str, Entry]:
    found: dict[str, Entry] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(root).as_posix()
        # With bytecode_only, a vendored module `foo.py` ships as `foo.pyc`: still a clash.
        clashing = [relative, *([relative + "c"] if relative.endswith(".py") else [])]
        if clash_with is not None and any((clash_with / name).exists() for name in clashing):
            raise OperationError(
                f"'{relative}' is both a file of the server and of a vendored dependency",
                hint="rename the server's module, or leave the file out with server.exclude",
            )
        found[relative] = Entry(relative, source=path)
    return found
