"""Package a binary server (`server.runtime = "binary"`) as an OCI image for Cloud Run.

The base is chosen by inspecting the executable (`orchestrator.build.elf`):
- `targets.cloudrun.base` when set (its libraries and glibc are checked against the binary);
- else a static executable gets no base at all (`scratch`): the image is one layer;
- else the default glibc base (`base_glibc.DEFAULT_GLIBC_BASE`), pinned by digest in
  `mcp-deploy.lock` on the first build like the Python default.
A base that lacks a library the binary links, or has an older glibc than it needs, is refused
before anything is written, naming what is missing.

One layer on top: `/app/mcp-deploy-launch` (mcp-deploy's launcher, the entrypoint: gate,
secrets, server supervision), `/app/bin/<server>`, `/app/mcp_deploy_runtime.json` and the
files `server.include` selects. No shell, uid 65532, labelled like the Python image. Several
platforms need one executable per CPU, so a binary image has exactly one platform.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator import __version__
from orchestrator.artifacts import Artifact
from orchestrator.build.archive import build_epoch, write_tar_layer
from orchestrator.build.binary import binary_part
from orchestrator.build.context import BuildContext, InputsHash
from orchestrator.build.elf import Executable, Provided, needs_problems
from orchestrator.errors import input_error
from orchestrator.oci import media
from orchestrator.oci.image import BaseImage, ImageChanges, assemble, scratch
from targets.cloudrun import CloudRunOptions
from targets.cloudrun.base_glibc import CACHE_FILE, DEFAULT_GLIBC_BASE, OffersCache, image_offers
from targets.cloudrun.base_image import ChosenBase, choose_base, pull
from targets.cloudrun.package import PLATFORM_ARCH, PORT, USER, image_labels, keep_image

APP_ROOT = "/app"
LAUNCHER_NAME = "mcp-deploy-launch"


def package_binary_image(context: BuildContext, options: CloudRunOptions) -> Artifact:
    """Build (or find in the store) the image of the spec's binary server."""
    if len(options.platforms) != 1:
        raise input_error(
            "targets.cloudrun.platforms",
            "a binary server is one executable for one CPU: an image of several platforms "
            "would run it on the wrong one",
            f'set platforms = ["{options.platforms[0]}"]',
        )
    platform = options.platforms[0]
    inputs = InputsHash("oci-image")
    inputs.add("mcp-deploy", __version__)
    inputs.add("epoch", str(build_epoch()))
    settings = {
        arch: f'targets.cloudrun.platforms = ["{name}"]' for name, arch in PLATFORM_ARCH.items()
    }
    part = binary_part(context, PLATFORM_ARCH[platform], settings, inputs)
    base = _base_for(context, options, part.executable, platform)
    inputs.add("base", base.identity if base is not None else "scratch")
    labels = image_labels(context, part.config, inputs)
    inputs_hash, cached = context.stored("oci-image", inputs, "image")
    if cached is not None:
        return cached
    changes = ImageChanges(
        env={"PORT": str(PORT)},
        entrypoint=[f"{APP_ROOT}/{LAUNCHER_NAME}"],
        working_dir=APP_ROOT,
        user=USER,
        labels=labels,
        exposed_port=PORT,
        created=build_epoch(),
    )
    with context.store.scratch("image") as work:
        context.progress("building the server layer")
        entries = part.entries(LAUNCHER_NAME, prefix=APP_ROOT.strip("/") + "/")
        layer = write_tar_layer(entries, Path(work) / "app.tar.gz")
        image: BaseImage = scratch(platform) if base is None else pull(context, base, platform)
        digest, size = assemble(image, [layer], changes, context.store)
    return keep_image(context, digest, media.OCI_MANIFEST, size, inputs_hash)


def _base_for(
    context: BuildContext, options: CloudRunOptions, executable: Executable, platform: str
) -> ChosenBase | None:
    """The base the executable runs on (None: scratch), checked to offer what it links."""
    if executable.static and options.base is None:
        context.progress("the server is a static executable: the image has no base (scratch)")
        return None

    def check(chosen: ChosenBase) -> None:
        offers = _offers(context, chosen, platform)
        problems = needs_problems(executable, offers)
        if problems:
            where = "targets.cloudrun.base" if chosen.explicit else "server.binary"
            raise input_error(
                where,
                f"{context.loaded.spec.server.binary} ({executable.linkage}) would not start "
                "on " + "; ".join(problems),
                "set targets.cloudrun.base to an image (pinned by digest) that has them, or "
                "link the server statically (Rust: the musl target; Go: CGO_ENABLED=0)",
            )

    context.progress(f"the server is {executable.linkage}: it needs a glibc base")
    return choose_base(context, options, DEFAULT_GLIBC_BASE, {"runtime": "binary"}, check)


def _offers(context: BuildContext, chosen: ChosenBase, platform: str) -> Provided:
    cache = OffersCache(context.store.root / CACHE_FILE)
    key = f"{chosen.digest}|{platform}"
    known = cache.get(key)
    if known is not None:
        return known
    context.progress(f"reading the libraries of base {chosen.pinned} ({platform})")
    image = pull(context, chosen, platform)
    layers = [context.store.blob_path(layer["digest"]) for layer in image.layers]
    offers = image_offers(f"the base {chosen.pinned}", layers)
    cache.put(key, offers)
    return offers
