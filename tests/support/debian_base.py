"""A minimal Python base image for the integration tests, made from Debian 12 packages.

No public registry is reachable from the test machines, so the tests make their own base:
`apt-get download` of python3.11-minimal and the libraries it needs, `dpkg-deb -x` into a
root filesystem, a little of what the packages' maintainer scripts would do (CA bundle, time
zone, `python3` link), a `nonroot` user (65532), the standard library precompiled, then one
deterministic OCI layer (sorted entries, mtime 0, owner root, gzip mtime 0) pushed to a local
registry over the distribution HTTP API.

The downloaded .debs and the built image are cached under
`$XDG_CACHE_HOME/mcp-deploy/test-base/` (default `~/.cache/...`); delete that directory to pick
up newer Debian packages. When the registry already holds the image, `python_base_image` costs
two small HTTP requests (a few milliseconds).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BaseImageError", "python_base_image"]

REPOSITORY = "python"
# Bump when the build below changes: it is part of the cache key.
RECIPE = 1
# Each one checked by leaving it out: the interpreter links libexpat and zlib;
# ssl, ctypes, sqlite3, uuid, bz2 and lzma need theirs; manylinux wheels (pydantic-core,
# cryptography) and glibc's thread cancellation need libgcc_s; the rest are data files
# (CA certificates, /etc/mime.types, zoneinfo, /etc/services).
PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "libgcc-s1",
    "zlib1g",
    "libexpat1",
    "libssl3",
    "libffi8",
    "libsqlite3-0",
    "libuuid1",
    "libbz2-1.0",
    "liblzma5",
    "ca-certificates",
    "media-types",
    "tzdata",
    "netbase",
)
# Debian 12 ships exactly one Python.
SUPPORTED_PYTHON = "3.11"
ARCH, TRIPLET = "amd64", "x86_64-linux-gnu"
NONROOT = 65532
# Documentation, translations and test-only modules: nothing a server imports.
PRUNE = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/lintian",
    "usr/share/locale",
    "usr/share/bug",
    "usr/share/debconf",
    "usr/share/ca-certificates",
    "usr/sbin/update-ca-certificates",
    "etc/ca-certificates",
    f"usr/lib/{TRIPLET}/gconv",
)
PRUNE_GLOBS = ("_test*.so", "_xxtestfuzz*.so", "xxlimited*.so", "_ctypes_test*.so")

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"

# Never send loopback traffic through an HTTP proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BaseImageError(RuntimeError):
    """The base image cannot be built or pushed; the message says what to do."""


@dataclass(frozen=True)
class _Image:
    """A built image in the cache: its manifest, and where its blobs are."""

    manifest: bytes
    blobs: Path

    @property
    def digest(self) -> str:
        return _digest(self.manifest)

    def blob(self, digest: str) -> Path:
        return self.blobs / _hex(digest)


def python_base_image(
    registry: str = "127.0.0.1:5000", python: str = "3.11", *, rebuild: bool = False
) -> str:
    """Build (once) and push a minimal Debian Python base image; return its pinned reference.

    `registry` is `host:port` of a registry spoken to over plain HTTP (a loopback one, started
    by `scripts/services start`). The image goes to repository `python` with tag `3.11`; the
    result is `<registry>/python@sha256:<manifest digest>`. `rebuild=True` builds the image
    again from the cached packages (the result must be the same digest).
    """
    if python != SUPPORTED_PYTHON:
        raise BaseImageError(
            f"no Python {python} base image: Debian 12 (bookworm) packages only Python "
            f"{SUPPORTED_PYTHON}; use python={SUPPORTED_PYTHON!r}"
        )
    base = f"http://{registry}"
    _check_registry(base)
    cache = _cache_dir(python)
    image = None if rebuild else _load(cache)
    if image is None:
        with _locked(cache):
            image = None if rebuild else _load(cache)
            if image is None:
                image = _build(cache)
    _push(base, image, tag=python)
    return f"{registry}/{REPOSITORY}@{image.digest}"


# -- cache -----------------------------------------------------------------------------------


def _cache_dir(python: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    recipe = json.dumps([RECIPE, python, ARCH, PACKAGES]).encode()
    return root / "mcp-deploy" / "test-base" / hashlib.sha256(recipe).hexdigest()[:16]


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """Serialize builds between processes (e.g. two test sessions)."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _load(cache: Path) -> _Image | None:
    """The image recorded by the last complete build, if all of its blobs are still there."""
    try:
        digest = (cache / "image").read_text().strip()
        image = _Image((cache / "blobs" / _hex(digest)).read_bytes(), cache / "blobs")
        parts = json.loads(image.manifest)
        if image.digest == digest and all(
            image.blob(d["digest"]).is_file() for d in [parts["config"], *parts["layers"]]
        ):
            return image
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _write_blob(blobs: Path, data: bytes) -> dict[str, Any]:
    digest = _digest(data)
    path = blobs / _hex(digest)
    if not path.is_file():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return {"digest": digest, "size": len(data)}


# -- build -----------------------------------------------------------------------------------


def _build(cache: Path) -> _Image:
    debs = _download(cache / "debs")
    blobs = cache / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix="rootfs.") as tmp:
        rootfs = Path(tmp)
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(rootfs)], umask=0o022)
        _configure(rootfs)
        _compile_stdlib(rootfs)
        raw = _layer_tar(rootfs)
    layer = _write_blob(blobs, _gzip(raw))
    config = {
        "architecture": ARCH,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"],
            "Cmd": ["python3"],
            "User": str(NONROOT),
        },
        "rootfs": {"type": "layers", "diff_ids": [_digest(raw)]},
        "history": [{"created_by": f"tests/support/debian_base.py: {' '.join(PACKAGES)}"}],
    }
    manifest = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, **_write_blob(blobs, _canonical(config))},
            "layers": [{"mediaType": LAYER_TYPE, **layer}],
        }
    )
    digest = _write_blob(blobs, manifest)["digest"]
    (cache / "image.tmp").write_text(digest + "\n")
    (cache / "image.tmp").replace(cache / "image")
    return _Image(manifest, blobs)


def _download(debs: Path) -> list[Path]:
    """The .deb of every package, downloaded once with `apt-get download`."""
    arch = _run(["dpkg", "--print-architecture"]).strip()
    if arch != ARCH:
        raise BaseImageError(f"the test base image is built for {ARCH}; this machine is {arch}")
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


def _configure(rootfs: Path) -> None:
    """Do what the packages' maintainer scripts would have done, and add a non-root user."""
    for name in ("python3", "python"):
        (rootfs / "usr/bin" / name).symlink_to("python3.11")
    # update-ca-certificates: one bundle of every CA shipped, in a stable order.
    certs = sorted((rootfs / "usr/share/ca-certificates").rglob("*.crt"), key=lambda p: str(p))
    if not certs:
        raise BaseImageError("ca-certificates shipped no certificates")
    _write(rootfs / "etc/ssl/certs/ca-certificates.crt", b"".join(c.read_bytes() for c in certs))
    # OpenSSL's default paths on Debian (links normally shipped by the `openssl` package).
    _mkdir(rootfs / "usr/lib/ssl")
    (rootfs / "usr/lib/ssl/certs").symlink_to("/etc/ssl/certs")
    (rootfs / "usr/lib/ssl/cert.pem").symlink_to("/etc/ssl/certs/ca-certificates.crt")
    # tzdata: UTC.
    (rootfs / "etc/localtime").symlink_to("/usr/share/zoneinfo/Etc/UTC")
    _write(rootfs / "etc/timezone", b"Etc/UTC\n")
    _write(
        rootfs / "etc/passwd",
        b"root:x:0:0:root:/root:/sbin/nologin\n"
        b"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )
    _write(rootfs / "etc/group", b"root:x:0:\nnogroup:x:65534:\nnonroot:x:65532:\n")
    for directory, mode in (("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700)):
        _mkdir(rootfs / directory)
        (rootfs / directory).chmod(mode)
    _mkdir(rootfs / "home/nonroot")  # owned by 65532 in the layer
    for path in PRUNE:
        target = rootfs / path
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for pattern in PRUNE_GLOBS:
        for module in (rootfs / "usr/lib/python3.11/lib-dynload").glob(pattern):
            module.unlink()


def _compile_stdlib(rootfs: Path) -> None:
    """Precompile the standard library with the image's own interpreter (start-up 4x faster).

    It runs through the image's dynamic loader, so it needs no chroot and no root. The .pyc
    files use unchecked hashes (no source mtime in them) and record `/usr/lib/...` paths, so
    they are reproducible; `-B -f` so that the modules compileall itself imports are compiled
    the same way as the rest, not left as the timestamped .pyc an import would write.
    """
    libs = f"{rootfs}/lib/{TRIPLET}:{rootfs}/usr/lib/{TRIPLET}"
    loader = rootfs / "lib" / TRIPLET / "ld-linux-x86-64.so.2"
    stdlib = rootfs / "usr/lib/python3.11"
    _run(
        [str(loader), "--inhibit-cache", "--library-path", libs,
         str(rootfs / "usr/bin/python3.11"), "-I", "-B", "-m", "compileall", "-q", "-f",
         "--invalidation-mode", "unchecked-hash", "-s", str(rootfs), "-p", "/", str(stdlib)],
        umask=0o022,
    )  # fmt: skip
    if not (stdlib / "__pycache__/os.cpython-311.pyc").is_file():
        raise BaseImageError("compiling the standard library wrote no .pyc files")


def _layer_tar(rootfs: Path) -> bytes:
    """The root filesystem as a reproducible tar: sorted, mtime 0, owned by root."""
    import io
    import tarfile

    entries = sorted(
        (os.path.relpath(os.path.join(top, name), rootfs) for top, dirs, files in os.walk(rootfs)
         for name in dirs + files),
        key=os.fsencode,
    )  # fmt: skip
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in entries:
            path = rootfs / name
            info = tar.gettarinfo(str(path), arcname=name)
            info.mtime = 0
            info.uid = info.gid = NONROOT if name == "home/nonroot" else 0
            info.uname = info.gname = ""
            info.mode = stat.S_IMODE(info.mode)
            if info.isreg():
                with path.open("rb") as content:
                    tar.addfile(info, content)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    import gzip
    import io

    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buffer.getvalue()


# -- registry --------------------------------------------------------------------------------


def _check_registry(base: str) -> None:
    try:
        status, _ = _request("GET", f"{base}/v2/", timeout=3)
    except OSError as error:
        status, reason = 0, str(getattr(error, "reason", error))
    else:
        reason = f"HTTP {status}"
    if status != 200:
        raise BaseImageError(
            f"no OCI registry answers at {base}/v2/ ({reason}); "
            "start the test services with `scripts/services start`"
        )


def _push(base: str, image: _Image, tag: str) -> None:
    """Push blobs the registry lacks, then the manifest by digest and by tag."""
    url = f"{base}/v2/{REPOSITORY}"
    status, headers = _request("HEAD", f"{url}/manifests/{tag}", {"Accept": MANIFEST_TYPE})
    if status == 200 and headers.get("Docker-Content-Digest") == image.digest:
        return
    parts = json.loads(image.manifest)
    for blob in [parts["config"], *parts["layers"]]:
        digest = blob["digest"]
        if _request("HEAD", f"{url}/blobs/{digest}")[0] == 200:
            continue
        status, headers = _request("POST", f"{url}/blobs/uploads/")
        location = headers.get("Location", "")
        if status != 202 or not location:
            raise BaseImageError(f"registry refused an upload to {url} (HTTP {status})")
        location = urllib.parse.urljoin(base, location)
        location += ("&" if "?" in location else "?") + f"digest={digest}"
        data = image.blob(digest).read_bytes()
        status, _ = _request("PUT", location, {"Content-Type": "application/octet-stream"}, data)
        if status != 201:
            raise BaseImageError(f"uploading {digest} to {url} failed (HTTP {status})")
    for reference in (image.digest, tag):
        status, headers = _request(
            "PUT", f"{url}/manifests/{reference}", {"Content-Type": MANIFEST_TYPE}, image.manifest
        )
        if status != 201 or headers.get("Docker-Content-Digest") != image.digest:
            raise BaseImageError(f"pushing the manifest to {url}:{reference} failed ({status})")


def _request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    timeout: float = 60,
) -> tuple[int, Any]:
    """(status, headers); HTTP errors are answers here, connection errors raise OSError."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _HTTP.open(request, timeout=timeout) as response:
            response.read()
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, error.headers


# -- small helpers ---------------------------------------------------------------------------


def _run(command: list[str], cwd: Path | None = None, umask: int = -1) -> str:
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, umask=umask, check=False
        )
    except FileNotFoundError:
        raise BaseImageError(
            f"{command[0]} not found: the base image is built on Debian 12"
        ) from None
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        raise BaseImageError(f"{' '.join(command[:2])} failed ({done.returncode}):\n{output}")
    return done.stdout


def _mkdir(path: Path, mode: int = 0o755) -> None:
    """mkdir -p with an explicit mode (the umask must not leak into the image)."""
    if not path.is_dir():
        _mkdir(path.parent)
        path.mkdir()
        path.chmod(mode)


def _write(path: Path, data: bytes) -> None:
    _mkdir(path.parent)
    path.write_bytes(data)
    path.chmod(0o644)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return value


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


if __name__ == "__main__":  # scripts/demo: print the pinned reference of the base image
    print(python_base_image())
