"""The conventional peers `bench/build.py` measures mcp-deploy against, and what they need.

- A pip-capable Python base image, made the way the tests' base is made
  (`tests/support/debian_base.py`: Debian 12 .debs extracted into a root filesystem, one
  deterministic layer) plus Debian's `python3-pip` and what it depends on, with pip's own
  modules precompiled as the packages' maintainer scripts would, and `dash` as /bin/sh. Like
  the official `python:3.11-slim` image it runs as root and has no `EXTERNALLY-MANAGED`
  marker, so the conventional `RUN pip install` works. Its CA bundle is the host's (this
  machine reaches PyPI through a TLS-intercepting proxy whose CA only the host bundle holds).
  Cached under `$XDG_CACHE_HOME/mcp-deploy/bench-base/`; pushed to the local registry as
  `bench/python-pip`.
- The Dockerfile a user would write for the server (`DOCKERFILE`).
- The conventional Lambda packaging script: `pip install -t`, copy the app, a Mangum handler,
  `zip -r` (`LAMBDA_SCRIPT`, `LAMBDA_HANDLER`).
- Small helpers for the local registry (manifests, deletes).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.support import debian_base as deb

REPOSITORY = "bench/python-pip"
TAG = "3.11"
# Bump when the build below changes: it is part of the cache key.
RECIPE = 1
# python3-pip and its dependency closure on top of the test base's packages (`python3` itself
# only adds the /usr/bin/python3 link, which the test base's configure step makes), and dash
# for the /bin/sh a Dockerfile's shell-form RUN needs.
PIP_PACKAGES = (
    "python3-pip",
    "python3-setuptools",
    "python3-pkg-resources",
    "python3-wheel",
    "python3-distutils",
    "python3-lib2to3",
    "dash",
)
PACKAGES = (*deb.PACKAGES, *PIP_PACKAGES)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# What the server's image pins: the same uvicorn and mangum as mcp-deploy's shims, so the
# peers install the same dependency set.
UVICORN = "uvicorn==0.54.0"
MANGUM = "mangum==0.22.0"

DOCKERFILE = """\
FROM {base}
WORKDIR /srv
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt {uvicorn}
COPY toolbox/ toolbox/
CMD ["python3","-m","uvicorn","toolbox.app:app","--host","0.0.0.0","--port","8080"]
"""

LAMBDA_HANDLER = """\
from mangum import Mangum

from toolbox.app import app

handler = Mangum(app)
"""

LAMBDA_SCRIPT = """\
set -e
rm -rf build lambda.zip
mkdir -p build/package
{python} -m pip install --quiet -t build/package -r requirements.txt {mangum}
cp -r toolbox handler.py build/package/
cd build/package
zip -q -r ../../lambda.zip .
"""

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- the pip-capable base image ---------------------------------------------------------------


def pip_base_image(registry: str = "127.0.0.1:5000") -> str:
    """Build (once; cached) and push the pip-capable base; its digest-pinned reference."""
    base = f"http://{registry}"
    deb._check_registry(base)
    trusted = hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest()
    recipe = json.dumps(
        [RECIPE, deb.RECIPE, deb.SUPPORTED_PYTHON, deb.ARCH, PACKAGES, trusted]
    ).encode()
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache = root / "mcp-deploy" / "bench-base" / hashlib.sha256(recipe).hexdigest()[:16]
    manifest = _load(cache)
    if manifest is None:
        with deb._locked(cache):
            manifest = _load(cache) or _build(cache)
    _push(base, manifest, cache / "blobs")
    return f"{registry}/{REPOSITORY}@{deb._digest(manifest)}"


def _load(cache: Path) -> bytes | None:
    try:
        digest = (cache / "image").read_text().strip()
        manifest = (cache / "blobs" / deb._hex(digest)).read_bytes()
        parts = json.loads(manifest)
        blobs = [parts["config"], *parts["layers"]]
        if deb._digest(manifest) == digest and all(
            (cache / "blobs" / deb._hex(blob["digest"])).is_file() for blob in blobs
        ):
            return manifest
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _build(cache: Path) -> bytes:
    debs = _download(cache / "debs")
    blobs = cache / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix="rootfs.") as tmp:
        rootfs = Path(tmp)
        for path in debs:
            deb._run(["dpkg-deb", "-x", str(path), str(rootfs)], umask=0o022)
        deb._configure(rootfs)
        # As in python:3.11-slim: pip may install into the image's Python.
        (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
        # This machine reaches PyPI through a TLS-intercepting egress proxy: trust what the
        # host trusts (Debian's CAs + the proxy's), as a corporate base image would.
        (rootfs / "etc/ssl/certs/ca-certificates.crt").write_bytes(HOST_CA_BUNDLE.read_bytes())
        if not (rootfs / "bin/sh").is_symlink():  # dash ships it, or its postinst makes it
            (rootfs / "bin/sh").symlink_to("dash")
        deb._compile_stdlib(rootfs)
        _compile(rootfs, "usr/lib/python3/dist-packages")
        raw = deb._layer_tar(rootfs)
    layer = deb._write_blob(blobs, deb._gzip(raw))
    config = {
        "architecture": deb.ARCH,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"],
            "Cmd": ["python3"],
        },
        "rootfs": {"type": "layers", "diff_ids": [deb._digest(raw)]},
        "history": [{"created_by": f"bench/_peers.py: {' '.join(PACKAGES)}"}],
    }
    manifest = deb._canonical(
        {
            "schemaVersion": 2,
            "mediaType": deb.MANIFEST_TYPE,
            "config": {
                "mediaType": deb.CONFIG_TYPE,
                **deb._write_blob(blobs, deb._canonical(config)),
            },
            "layers": [{"mediaType": deb.LAYER_TYPE, **layer}],
        }
    )
    digest = deb._write_blob(blobs, manifest)["digest"]
    (cache / "image.tmp").write_text(digest + "\n")
    (cache / "image.tmp").replace(cache / "image")
    return manifest


def _download(debs: Path) -> list[Path]:
    """Every package's .deb, downloaded once with `apt-get download`."""
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        with tempfile.TemporaryDirectory(dir=debs, prefix="download.") as tmp:
            sandbox = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
            deb._run(["apt-get", "download", "-q", *sandbox, *missing], cwd=Path(tmp))
            for path in Path(tmp).glob("*.deb"):
                path.replace(debs / path.name)
    found = []
    for package in PACKAGES:
        matches = sorted(debs.glob(f"{package}_*.deb"))
        if len(matches) != 1:
            raise deb.BaseImageError(f"expected one {package} .deb in {debs}, found {len(matches)}")
        found.append(matches[0])
    return found


def _compile(rootfs: Path, directory: str) -> None:
    """Precompile `directory` with the image's interpreter (what py3compile does in postinst)."""
    libs = f"{rootfs}/lib/{deb.TRIPLET}:{rootfs}/usr/lib/{deb.TRIPLET}"
    loader = rootfs / "lib" / deb.TRIPLET / "ld-linux-x86-64.so.2"
    deb._run(
        [str(loader), "--inhibit-cache", "--library-path", libs,
         str(rootfs / "usr/bin/python3.11"), "-I", "-B", "-m", "compileall", "-q", "-f",
         "--invalidation-mode", "unchecked-hash", "-s", str(rootfs), "-p", "/",
         str(rootfs / directory)],
        umask=0o022,
    )  # fmt: skip


def _push(base: str, manifest: bytes, blobs: Path) -> None:
    url = f"{base}/v2/{REPOSITORY}"
    digest = deb._digest(manifest)
    status, headers = deb._request("HEAD", f"{url}/manifests/{digest}")
    if status == 200:
        return
    parts = json.loads(manifest)
    for blob in [parts["config"], *parts["layers"]]:
        if deb._request("HEAD", f"{url}/blobs/{blob['digest']}")[0] == 200:
            continue
        status, headers = deb._request("POST", f"{url}/blobs/uploads/")
        location = urllib.parse.urljoin(base, headers.get("Location", ""))
        location += ("&" if "?" in location else "?") + f"digest={blob['digest']}"
        data = (blobs / deb._hex(blob["digest"])).read_bytes()
        status, _ = deb._request(
            "PUT", location, {"Content-Type": "application/octet-stream"}, data
        )
        if status != 201:
            raise deb.BaseImageError(f"uploading {blob['digest']} to {url} failed ({status})")
    for reference in (digest, TAG):
        status, _ = deb._request(
            "PUT", f"{url}/manifests/{reference}", {"Content-Type": deb.MANIFEST_TYPE}, manifest
        )
        if status != 201:
            raise deb.BaseImageError(f"pushing the manifest to {url}:{reference} failed ({status})")


# -- the local registry -----------------------------------------------------------------------

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def fetch_manifest(registry: str, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
    """(digest, manifest) of `repository:reference` in a plain-HTTP registry."""
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{reference}",
        headers={"Accept": MANIFEST_ACCEPT},
    )
    with _HTTP.open(request, timeout=30) as response:
        body = response.read()
    document: dict[str, Any] = json.loads(body)
    return deb._digest(body), document


def compressed_size(manifest: dict[str, Any]) -> int:
    """Bytes a pull transfers for an image: its config and compressed layers."""
    return int(manifest["config"]["size"]) + sum(int(layer["size"]) for layer in manifest["layers"])


def delete_manifest(registry: str, repository: str, digest: str) -> None:
    """Untag and delete a manifest (its blobs stay until the registry's garbage collection)."""
    deb._request("DELETE", f"http://{registry}/v2/{repository}/manifests/{digest}")
