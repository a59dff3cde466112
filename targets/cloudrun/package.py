"""Package a server as an OCI image: base (pinned by digest) + dependency layer + app layer.

The base is `targets.cloudrun.base`, else the default Python image pinned in the lock file,
and its Python is checked against `server.python` before anything is vendored (see
`targets.cloudrun.base_image`).

Assembled without a container daemon. The dependency layer (`/app/deps`) is cached by the
vendored set's key, so an app-only change rebuilds just the small app layer (`/app/src`,
holding the server's files, the shims and the runtime config; with `bytecode_only` the
dependency layer holds bytecode only). The image runs as uid 65532,
starts `python3 -m mcp_deploy_serve` (uvicorn on $PORT, graceful SIGTERM) and is labelled with
its source, revision and spec hash. Two platforms give an OCI index.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from orchestrator import __version__
from orchestrator.artifacts import Artifact
from orchestrator.build.app import AppPart, requirements_origin, shim_requirements
from orchestrator.build.archive import Entry, Layer, build_epoch, write_tar_layer
from orchestrator.build.context import BuildContext, InputsHash
from orchestrator.build.provenance import source_labels
from orchestrator.build.store import ArtifactStore, BlobState
from orchestrator.build.vendor import find_requirements, vendor
from orchestrator.oci import media
from orchestrator.oci.image import ImageChanges, assemble, index
from targets.cloudrun import CloudRunOptions
from targets.cloudrun.base_image import prepare_base, pull

APP_ROOT = "/app/src"
DEPS_ROOT = "/app/deps"
SHIM = Path(__file__).with_name("shim") / "mcp_deploy_serve.py"
SHIM_REQUIREMENTS = ("uvicorn==0.54.0",)
PLATFORM_ARCH = {"linux/amd64": "x86_64", "linux/arm64": "arm64"}
PORT = 8080
USER = "65532:65532"


def package_image(context: BuildContext, options: CloudRunOptions) -> Artifact:
    """Build (or find in the store) the server's image for `options.platforms`.

    Raises `InputError` when the base's Python is not `server.python` (before vendoring),
    `OperationError` when the base cannot be resolved or pulled, or a build step fails."""
    spec = context.loaded.spec
    chosen = prepare_base(context, options)
    found = find_requirements(context.project_dir)
    requirements = (
        *(found.lines if found else ()),
        *SHIM_REQUIREMENTS,
        *shim_requirements(context),
    )
    origin = requirements_origin(context, str(found.origin) if found else "the server shim")

    inputs = InputsHash("oci-image")
    inputs.add("mcp-deploy", __version__)
    inputs.add("epoch", str(build_epoch()))
    inputs.add("base", options.base or chosen.identity)
    vendored: dict[str, tuple[Path, str]] = {}
    for platform in options.platforms:
        context.progress(f"vendoring dependencies for {platform}")
        vendored[platform] = vendor(
            requirements,
            arch=PLATFORM_ARCH[platform],
            python=spec.server.python,
            prefix=DEPS_ROOT,
            origin=origin,
            bytecode_only=options.bytecode_only,
        )
        inputs.add(f"vendor:{platform}", vendored[platform][1])
    app = AppPart(context, [SHIM], inputs)
    labels = image_labels(context, app.config, inputs)
    inputs_hash, cached = context.stored("oci-image", inputs, "image")
    if cached is not None:
        return cached

    changes = ImageChanges(
        env={
            "PYTHONPATH": f"{APP_ROOT}:{DEPS_ROOT}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PORT": str(PORT),
        },
        entrypoint=["python3", "-m", "mcp_deploy_serve"],
        working_dir=APP_ROOT,
        user=USER,
        labels=labels,
        exposed_port=PORT,
        created=build_epoch(),
    )
    manifests: list[tuple[str, int, str]] = []
    with context.store.scratch("image") as scratch:
        context.progress("building the app layer")
        stage = app.stage(Path(scratch) / "app", APP_ROOT)
        app_layer = write_tar_layer(_tree(stage, APP_ROOT), Path(scratch) / "app.tar.gz")
        for platform in options.platforms:
            context.progress(f"pulling base {chosen.pinned} for {platform} from {chosen.via}")
            base = pull(context, chosen, platform)
            site, key = vendored[platform]
            context.progress(f"dependency layer for {platform}")
            deps_layer = _dependency_layer(
                context.store, site, key, Path(scratch), context.progress
            )
            digest, size = assemble(base, [deps_layer, app_layer], changes, context.store)
            manifests.append((digest, size, platform))
        if len(manifests) == 1:
            digest, size, _ = manifests[0]
            media_type = media.OCI_MANIFEST
        else:
            digest, size = index(manifests, context.store)
            media_type = media.OCI_INDEX
    return keep_image(context, digest, media_type, size, inputs_hash)


def keep_image(
    context: BuildContext, digest: str, media_type: str, size: int, inputs_hash: str
) -> Artifact:
    """Tag the assembled image (manifest or index `digest`) with the server's name in the
    store and record it as the artifact of `inputs_hash`."""
    context.store.tag_image(context.loaded.spec.server.name, digest, media_type, size)
    artifact = Artifact(
        kind="oci-image",
        target="cloudrun",
        digest=digest,
        size=image_size(context.store, digest),
        inputs_hash=inputs_hash,
        path=context.store.blob_path(digest),
    )
    context.store.record(artifact)
    return artifact


def image_labels(
    context: BuildContext, runtime_config: bytes, inputs: InputsHash
) -> dict[str, str]:
    """The image's labels (server name, hash of its runtime config, source and revision),
    added to `inputs`."""
    labels = {
        "org.opencontainers.image.title": context.loaded.spec.server.name,
        "dev.mcp-deploy.spec-hash": hashlib.sha256(runtime_config).hexdigest(),
        **source_labels(context.project_dir),
    }
    inputs.add("labels", json.dumps(labels, sort_keys=True))
    return labels


def _tree(directory: Path, root: str) -> list[Entry]:
    prefix = root.strip("/")
    return [
        Entry(f"{prefix}/{path.relative_to(directory).as_posix()}", source=path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    ]


def _dependency_layer(
    store: ArtifactStore, site: Path, key: str, scratch: Path, progress: Callable[[str], None]
) -> Layer:
    """The layer of a vendored set, built once per set and kept in the store. A stored layer
    is reused only when its blob checks out (size and digest, `ArtifactStore.check_blob`);
    a damaged one is discarded and built again."""
    record = store.root / "layers" / f"{key}.json"
    try:
        known = json.loads(record.read_text())
        digest, diff_id, size = str(known["digest"]), str(known["diff_id"]), int(known["size"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    else:
        state = store.check_blob(digest, size)
        if state is BlobState.INTACT:
            return Layer(store.blob_path(digest), digest, diff_id, size)
        damage = "missing" if state is BlobState.MISSING else "damaged (discarded)"
        progress(f"the stored dependency layer {digest[:19]}… is {damage}: building it again")
    layer = write_tar_layer(_tree(site, DEPS_ROOT), scratch / f"deps-{key}.tar.gz")
    store.add_file_copy(layer.path, layer.digest)
    store.write_json(record, {"digest": layer.digest, "diff_id": layer.diff_id, "size": layer.size})
    return Layer(store.blob_path(layer.digest), layer.digest, layer.diff_id, layer.size)


def image_size(store: ArtifactStore, digest: str) -> int:
    """Bytes of every blob of the image (compressed layers, configs, manifests)."""
    document = json.loads(store.blob_path(digest).read_bytes())
    total = store.blob_path(digest).stat().st_size
    for child in document.get("manifests", []):
        total += image_size(store, child["digest"])
    if "config" in document:
        total += document["config"]["size"] + sum(layer["size"] for layer in document["layers"])
    return total
