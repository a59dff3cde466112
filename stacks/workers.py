"""The Cloudflare Workers program: one request -> a Python Worker on the account's workers.dev.

`program(request, secret_values, *, artifact_path)` (the `stacks.Program` contract) declares,
with an explicit `cloudflare.Provider` passed to every resource (it reads its API token from
CLOUDFLARE_API_TOKEN itself: the program names no credential), in `targets.workers.account_id`,
for the script name `{server}-{environment}` (lowercase letters, digits and `-`, at most 63
characters, else its head and a stable hash):
- the Worker (`cloudflare.Worker`): the script's identity and settings, tags
  `mcp-deploy-server=…`/`mcp-deploy-environment=…`, its workers.dev subdomain enabled (Cloudflare
  computes its URL: `subdomain.url`, so the account's subdomain need not be known), logs on;
- one version (`cloudflare.WorkerVersion`) holding the code and the configuration: every module
  of the bundle inline (base64), named and typed as wrangler uploads a pywrangler project
  (`src/*.py` relative to `src/` as `text/x-python`, main module `entry.py`; other files under
  `src/` by wrangler's default rules, else as data; every file of `python_modules/` under its
  own path as data, `application/octet-stream`, `.pyc` left out), the compatibility date and
  flags, the cpu_ms limit when set, `annotations.workers_tag` = the artifact's digest, and the
  bindings: `request.config` as `plain_text`, `MCP_DEPLOY_ENV_NAMES` (a JSON array of the config
  names, which the shim exports as environment variables) and each `env:`/`file:` secret as
  `secret_text` whose text is `Output.secret(value)`;
- a deployment (`cloudflare.WorkersDeployment`) sending 100% of traffic to that version.
Outputs: `url` (the workers.dev URL + the MCP path), `script`, `version_id`, `deployment_id`.

Why Worker + WorkerVersion + WorkersDeployment and not `WorkersScript`: in pulumi-cloudflare
6.23.1 `WorkerVersion.modules` treats every module alike (name, content type, base64 content;
the main module is named by `main_module`), while `WorkersScript` splits the main module
(`content`) from the rest (`files`); `Worker` takes tags (`WorkersScript` has none) and reports
the workers.dev URL; and a version is immutable, so a deploy is "new version, then point the
deployment at it". The provider marks these three as beta.

Secret values only ever sit inside `Output.secret`. Pulumi marks a whole input secret when any
part of it is: with one secret binding the version's whole `bindings` list (plain config
included) is secret in state and previews. The modules are inline because the program writes
no files (`content_file` would need the bundle unpacked to stable paths), so the stack's state
holds the code, base64, about 4/3 of the bundle's uncompressed size.

Refused (OperationError), before any resource is declared: no account id; `routes` (a route
needs a zone id, which targets.workers cannot name yet) and `workers_dev = false` (then nothing
would serve the Worker); auth mode `iam`; `aws-sm://`/`gcp-sm://` secrets (Workers cannot read
them; Cloudflare's Secrets Store binds asynchronously, which the shim does not read); a bundle
over Cloudflare's size limits, not matching the request's digest, not laid out as a Workers
bundle, or built for other compatibility settings. The only I/O is reading the bundle.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pulumi
import pulumi_cloudflare as cloudflare

from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import OperationError
from stacks._options import required_option
from stacks._secrets import check_secret_values
from stacks._workers_js import METADATA as JS_METADATA
from stacks._workers_js import js_metadata, js_modules

# The bundle's layout (targets/workers/package.py, which a program must not import).
MAIN_PATH = "src/entry.py"
SOURCE_DIR = "src/"
VENDOR_DIR = "python_modules/"
MANIFEST = "mcp-deploy-workers.json"
MAIN_MODULE = "entry.py"
ENV_NAMES_BINDING = "MCP_DEPLOY_ENV_NAMES"  # read by targets/workers/shim/entry.py
# https://developers.cloudflare.com/workers/platform/limits/#worker-size (looked up
# 2026-11-24; the same numbers as targets/workers/package.py): 10 MB compressed on the Paid
# plan, 3 MB on the Free plan, 64 MB uncompressed. The zip's size stands in for the upload's.
MAX_COMPRESSED = 10 * 1024 * 1024
MAX_COMPRESSED_FREE = 3 * 1024 * 1024
MAX_UNCOMPRESSED = 64 * 1024 * 1024
RUNTIME_FLAGS = {"python": "python_workers", "node": "nodejs_compat"}
MAX_SCRIPT_NAME = 63  # a DNS label of `<script>.<subdomain>.workers.dev`
PYTHON_MODULE = "text/x-python"
DATA = "application/octet-stream"
# wrangler's module types (deployment-bundle/rules.ts, create-worker-upload-form.ts): Python
# sources, its default rules for the rest; a file no rule matches is uploaded as data here
# (wrangler would leave it out, but the build selected it on purpose).
SOURCE_TYPES = {
    ".py": PYTHON_MODULE,
    ".txt": "text/plain",
    ".html": "text/plain",
    ".wasm": "application/wasm",
}
_NOT_IN_NAME = re.compile(r"[^a-z0-9-]+")


def program(
    request: DeploymentRequest,
    secret_values: Mapping[str, str],
    /,
    *,
    artifact_path: str,
) -> dict[str, Any]:
    """Declare the resources of `request` (see the module doc); return the stack outputs."""
    account_id = _account_id(request)
    _check_reach(request)
    bindings = _bindings(request, secret_values)
    main_module, modules = bundle_modules(request, Path(artifact_path))
    options = request.options
    name = script_name(request.server, request.environment)
    provider = cloudflare.Provider(f"{name}-cloudflare")
    opts = pulumi.ResourceOptions(provider=provider)
    message = f"mcp-deploy {request.server} {request.environment}"

    worker = cloudflare.Worker(
        f"{name}-worker",
        account_id=account_id,
        name=name,
        tags=[
            f"mcp-deploy-server={request.server}",
            f"mcp-deploy-environment={request.environment}",
        ],
        subdomain=cloudflare.WorkerSubdomainArgs(enabled=True, previews_enabled=False),
        observability=cloudflare.WorkerObservabilityArgs(enabled=True),
        opts=opts,
    )
    cpu_ms = options.get("cpu_ms")
    version = cloudflare.WorkerVersion(
        f"{name}-version",
        account_id=account_id,
        worker_id=worker.id,
        main_module=main_module,
        modules=modules,
        compatibility_date=str(options["compatibility_date"]),
        compatibility_flags=compatibility_flags(request),
        bindings=bindings,
        limits=None if cpu_ms is None else cloudflare.WorkerVersionLimitsArgs(cpu_ms=int(cpu_ms)),
        annotations=cloudflare.WorkerVersionAnnotationsArgs(
            workers_tag=request.artifact.digest, workers_message=message
        ),
        opts=opts,
    )
    deployment = cloudflare.WorkersDeployment(
        f"{name}-deployment",
        account_id=account_id,
        script_name=worker.name,
        strategy="percentage",
        versions=[cloudflare.WorkersDeploymentVersionArgs(percentage=100, version_id=version.id)],
        annotations=cloudflare.WorkersDeploymentAnnotationsArgs(workers_message=message),
        opts=opts,
    )
    return {
        "url": worker.subdomain.apply(lambda sub: _url(sub, request.mcp_path)),
        "script": worker.name,
        "version_id": version.id,
        "deployment_id": deployment.id,
    }


def script_name(server: str, environment: str) -> str:
    """`{server}-{environment}` as a Workers script name: lowercase letters, digits and `-`, at
    most 63 characters; a longer one becomes its head, `-` and 8 hex of the sha256 of the
    whole (stable, and distinct for distinct names)."""
    whole = f"{server}-{environment}"
    name = _NOT_IN_NAME.sub("-", whole.lower()).strip("-")
    if len(name) <= MAX_SCRIPT_NAME:
        return name
    digest = hashlib.sha256(whole.encode()).hexdigest()[:8]
    return f"{name[: MAX_SCRIPT_NAME - 9].rstrip('-')}-{digest}"


def module_type(path: str) -> tuple[str, str] | None:
    """(module name, content type) of a bundle file as wrangler uploads it, or None for files
    that are not uploaded (wrangler.toml, the manifest, compiled bytecode)."""
    if path.startswith(SOURCE_DIR):
        name = path.removeprefix(SOURCE_DIR)
        return name, SOURCE_TYPES.get(PurePosixPath(name).suffix, DATA)
    if path.startswith(VENDOR_DIR) and not path.endswith(".pyc") and "__pycache__/" not in path:
        return path, DATA
    return None


def bundle_modules(
    request: DeploymentRequest, path: Path
) -> tuple[str, list[cloudflare.WorkerVersionModuleArgs]]:
    """The Worker's main module and modules from the bundle at `path` (a Python Worker's, or a
    JavaScript one's: `stacks._workers_js`), main module first, after checking that it
    is the request's artifact, fits Cloudflare's size limits and was built for the request's
    compatibility settings."""
    size = path.stat().st_size
    if size > MAX_COMPRESSED:
        raise _too_big(
            f"{_size(size)} compressed",
            f"{_size(MAX_COMPRESSED)} compressed ({_size(MAX_COMPRESSED_FREE)} on the Free plan)",
        )
    data = path.read_bytes()
    if f"sha256:{hashlib.sha256(data).hexdigest()}" != request.artifact.digest:
        raise OperationError(
            f"{path} is not the requested artifact ({request.artifact.digest})",
            hint="the engine must pass the stored bundle of the request's digest",
        )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        if JS_METADATA in files:  # a JavaScript Worker (a Node server)
            metadata = js_metadata(archive)
            _check_built_for(request, metadata)
            total = sum(info.file_size for info in files.values())
            if total > MAX_UNCOMPRESSED:
                raise _too_big(
                    f"{_size(total)} uncompressed", f"{_size(MAX_UNCOMPRESSED)} uncompressed"
                )
            return str(metadata["main_module"]), js_modules(archive, metadata)
        if MAIN_PATH not in files or MANIFEST not in files:
            raise OperationError(
                f"{path} is not a Workers bundle (no {MAIN_PATH} or {MANIFEST})",
                hint="build the artifact for target workers",
            )
        _check_built_for(request, json.loads(archive.read(MANIFEST)))
        uploaded: dict[str, tuple[str, zipfile.ZipInfo]] = {}
        for file, info in sorted(files.items()):
            typed = module_type(file)
            if typed is None:
                continue
            if typed[0] in uploaded:
                raise OperationError(
                    f"two files of the bundle are both the Worker module {typed[0]!r}",
                    hint="rename the server's python_modules directory",
                )
            uploaded[typed[0]] = (typed[1], info)
        total = sum(info.file_size for _, info in uploaded.values())
        if total > MAX_UNCOMPRESSED:
            raise _too_big(
                f"{_size(total)} uncompressed", f"{_size(MAX_UNCOMPRESSED)} uncompressed"
            )
        return MAIN_MODULE, [
            cloudflare.WorkerVersionModuleArgs(
                name=module,
                content_type=content_type,
                content_base64=base64.b64encode(archive.read(info)).decode(),
            )
            for module, (content_type, info) in sorted(
                uploaded.items(), key=lambda item: (item[0] != MAIN_MODULE, item[0])
            )
        ]


def _bindings(
    request: DeploymentRequest, secret_values: Mapping[str, str]
) -> list[cloudflare.WorkerVersionBindingArgs]:
    """Config as `plain_text`, the config names for the shim, each secret as `secret_text`
    wrapped in `Output.secret`; foreign-cloud secret references are refused."""
    declared_local = check_secret_values(request, secret_values)
    for secret, ref in sorted(request.secrets.items()):
        if secret not in declared_local:
            scheme = ref.split(":", 1)[0]
            raise OperationError(
                f"secret {secret}: a {scheme} reference cannot reach a Worker",
                hint="use env: or file: for this environment's Workers secrets (they become "
                "secret_text bindings); Cloudflare's Secrets Store is not supported yet",
            )
    if ENV_NAMES_BINDING in request.config or ENV_NAMES_BINDING in request.secrets:
        raise OperationError(
            f"{ENV_NAMES_BINDING} is reserved on Workers (the shim reads it)",
            hint="rename that config value or secret",
        )
    config = dict(sorted(request.config.items()))
    bindings = [
        cloudflare.WorkerVersionBindingArgs(name=key, type="plain_text", text=value)
        for key, value in config.items()
    ]
    bindings.append(
        cloudflare.WorkerVersionBindingArgs(
            name=ENV_NAMES_BINDING, type="plain_text", text=json.dumps(list(config))
        )
    )
    bindings += [
        cloudflare.WorkerVersionBindingArgs(
            name=secret, type="secret_text", text=pulumi.Output.secret(secret_values[secret])
        )
        for secret in sorted(declared_local)
    ]
    return bindings


def _account_id(request: DeploymentRequest) -> str:
    return required_option(request, "account_id", "Cloudflare account id")


def _check_reach(request: DeploymentRequest) -> None:
    """Refuse what the program cannot serve: routes, no workers.dev, IAM auth."""
    options = request.options
    if options.get("routes"):
        raise OperationError(
            "targets.workers.routes is not supported yet: a Workers route needs its zone id, "
            "which targets.workers cannot name",
            hint="remove the routes and use the workers.dev URL, or add the routes in the "
            "Cloudflare dashboard",
        )
    if not options.get("workers_dev", True):
        raise OperationError(
            "targets.workers.workers_dev = false leaves the Worker without any address "
            "(routes are not supported yet)",
            hint="set targets.workers.workers_dev = true",
        )
    if request.auth.get("mode") == "iam":
        raise OperationError(
            "Workers has no IAM auth",
            hint="use auth.mode = 'bearer' for a Worker",
        )


def compatibility_flags(request: DeploymentRequest) -> list[str]:
    """The options' compatibility flags plus the one the runtime needs (the same rule as
    targets.workers.effective_flags, which a program must not import)."""
    flags = [str(flag) for flag in request.options.get("compatibility_flags") or []]
    needed = RUNTIME_FLAGS.get(request.runtime)
    if needed is not None and needed not in flags:
        flags.append(needed)
    return flags


def _check_built_for(request: DeploymentRequest, manifest: Mapping[str, Any]) -> None:
    """The bundle's compatibility settings (they chose its Python) must be the request's."""
    built = (manifest.get("compatibility_date"), manifest.get("compatibility_flags"))
    wanted = (str(request.options.get("compatibility_date")), compatibility_flags(request))
    if built != wanted:
        raise OperationError(
            f"the bundle was built for compatibility date {built[0]} and flags {built[1]}; "
            f"the request asks for {wanted[0]} and {wanted[1]}",
            hint="rebuild for this environment's targets.workers compatibility settings",
        )


def _too_big(size: str, limit: str) -> OperationError:
    return OperationError(
        f"the Worker is {size}; Workers allow at most {limit}",
        hint="drop unneeded dependencies or exclude files with server.exclude, or deploy to "
        "Lambda or Cloud Run",
    )


def _size(size: int) -> str:
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{size} bytes"


def _url(subdomain: Any, mcp_path: str) -> str | None:
    """The workers.dev URL Cloudflare reports for the Worker, followed by the MCP path (None
    when the account has no workers.dev subdomain yet)."""
    url = getattr(subdomain, "url", None) if subdomain is not None else None
    return f"{str(url).rstrip('/')}{mcp_path}" if url else None
