"""mcp-deploy's launcher for `server.runtime = "binary"`, built once per machine and cached.

The launcher (`targets/shim/launcher`, Go) is what runs first in a binary server's artifact:
`/var/task/bootstrap` in a Lambda zip, `/app/mcp-deploy-launch` in a Cloud Run image. It is
the standard library plus the modules its go.sum pins (`github.com/golang-jwt/jwt/v5` for the
OAuth gate, `golang.org/x/crypto/x509roots/fallback` for root certificates in images without
any). It is compiled here with the local Go toolchain (1.22 or later) as a static, stripped,
reproducible Linux executable: `CGO_ENABLED=0`, `-trimpath`, `-ldflags "-s -w -buildid="`,
`-buildvcs=false`, `GOAMD64=v1`/`GOARM64=v8.0`, `GOTOOLCHAIN=local`. Two builds from the
same sources with the same Go for the same CPU give the same bytes.

Modules: the build itself never downloads (`GOPROXY=off`, `-mod=readonly`: go.sum is the
authority, and Go refuses a module whose bytes do not match it). Before it, `go mod download`
makes sure they are in the module cache: offline first, else from the user's `GOPROXY`
(default https://proxy.golang.org), so only the first build on a machine needs the network.
The module cache is the user's own (GOMODCACHE, else ~/go/pkg/mod) when it can be written,
else `cache_root()/go-modules` (written with `-modcacherw`, so it can be deleted).

The result lives in `cache_root()/launcher/<key>/mcp-deploy-launch`, where the key is the
sha256 of the launcher's sources (names and bytes, go.sum included), `go version`'s output and
the CPU. A build goes to a temporary directory first and is renamed into place, so concurrent
builds are safe and a cached file is always complete.

Part of the build toolkit: imports only `orchestrator.paths`, `orchestrator.errors` and the
standard library.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from orchestrator.errors import OperationError, input_error
from orchestrator.paths import cache_root

LAUNCHER_DIR = Path(__file__).resolve().parent.parent.parent / "targets" / "shim" / "launcher"
EXECUTABLE_NAME = "mcp-deploy-launch"
GOARCH = {"x86_64": "amd64", "arm64": "arm64"}  # Lambda's CPU names -> Go's
MINIMUM_GO = (1, 22)
BUILD_TIMEOUT = 1200  # seconds; a cold build (standard library included) takes well under one
DOWNLOAD_TIMEOUT = 600  # seconds for `go mod download` (two small modules)
DEFAULT_GOPROXY = "https://proxy.golang.org"
OUTPUT_TAIL = 60  # lines of compiler output shown when a build fails

_GO_HINT = (
    "install Go 1.22 or later from https://go.dev/dl/ (or your package manager) and put its "
    "bin directory on PATH; mcp-deploy builds its launcher with it once per machine"
)


def launcher_sources(directory: Path | None = None) -> dict[str, bytes]:
    """The files the launcher is built from, name -> bytes, sorted by name: `go.mod`,
    `go.sum` when present and every `*.go` but the tests (`*_test.go`, which never reach the
    executable)."""
    root = directory if directory is not None else LAUNCHER_DIR
    names = sorted(
        path.name
        for path in root.iterdir()
        if path.is_file()
        and (
            path.name in ("go.mod", "go.sum")
            or (path.suffix == ".go" and not path.name.endswith("_test.go"))
        )
    )
    return {name: (root / name).read_bytes() for name in names}


def _hash_sources(sources: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256(b"mcp-deploy-launcher-sources\0")
    for name in sorted(sources):
        data = sources[name]
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def launcher_sources_hash() -> str:
    """A sha256 of the launcher's sources (see `launcher_sources`): it changes exactly when
    they do. Cheap, needs no Go; for artifacts' inputs hashes."""
    return _hash_sources(launcher_sources())


def launcher_key(sources: Mapping[str, bytes], go_version: str, arch: str) -> str:
    """The cache key of one build: sources, `go version` output and CPU ("x86_64"/"arm64")."""
    digest = hashlib.sha256(b"mcp-deploy-launcher\0")
    for part in (_hash_sources(sources), go_version.strip(), arch):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _goarch(arch: str) -> str:
    try:
        return GOARCH[arch]
    except KeyError:
        raise ValueError(
            f"no launcher for CPU {arch!r}: expected one of {sorted(GOARCH)}"
        ) from None


def go_environment(
    arch: str, gocache: str | None = None, gomodcache: str | None = None
) -> dict[str, str]:
    """The environment of every `go` command run here: the user's, made hermetic (no
    toolchain or module downloads, no workspace, no VCS stamping, fixed CPU level), for
    GOOS=linux and `arch` (Lambda's name). `gocache` and `gomodcache` replace GOCACHE and
    GOMODCACHE when given."""
    env = dict(os.environ)
    env.update(
        {
            "CGO_ENABLED": "0",
            "GOOS": "linux",
            "GOARCH": _goarch(arch),
            "GOAMD64": "v1",
            "GOARM64": "v8.0",
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off",
            "GOWORK": "off",
            "GO111MODULE": "on",
            # Not empty, so that a GOFLAGS in the user's go env file does not apply.
            "GOFLAGS": "-buildvcs=false",
        }
    )
    if gocache is not None:
        env["GOCACHE"] = gocache
    if gomodcache is not None:
        env["GOMODCACHE"] = gomodcache
    return env


def download_environment(
    arch: str, gocache: str | None = None, gomodcache: str | None = None
) -> dict[str, str]:
    """`go_environment` for `go mod download`: modules from the user's GOPROXY (unless it is
    "off"; default https://proxy.golang.org), checked against go.sum and never added to it
    (`-mod=readonly`); in mcp-deploy's own module cache (`gomodcache` given) written
    writable (`-modcacherw`), so it can be deleted."""
    env = go_environment(arch, gocache, gomodcache)
    proxy = os.environ.get("GOPROXY", "").strip()
    env["GOPROXY"] = proxy if proxy and proxy != "off" else DEFAULT_GOPROXY
    env["GOFLAGS"] = "-buildvcs=false -mod=readonly" + (" -modcacherw" if gomodcache else "")
    return env


def go_toolchain() -> tuple[str, str]:
    """(path of `go` on PATH, its `go version` output). `InputError` when there is no `go`
    or it is older than 1.22; `OperationError` when it does not run."""
    go = shutil.which("go")
    if go is None:
        raise input_error(
            "server.runtime",
            'runtime "binary" needs the Go toolchain (1.22 or later) to build mcp-deploy\'s '
            "launcher once per machine, and there is no 'go' on PATH",
            _GO_HINT,
        )
    try:
        finished = subprocess.run(
            [go, "version"],
            env=go_environment("x86_64"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise OperationError(f"could not run '{go} version': {error}") from None
    version = finished.stdout.strip()
    if finished.returncode != 0 or not version:
        raise OperationError(
            f"'{go} version' failed (exit status {finished.returncode})",
            hint=_GO_HINT,
            detail=finished.stderr,
        )
    found = re.search(r"\bgo(\d+)\.(\d+)", version)
    if found and (int(found[1]), int(found[2])) < MINIMUM_GO:  # "devel" builds pass
        raise input_error(
            "server.runtime",
            f'runtime "binary" needs Go 1.22 or later to build mcp-deploy\'s launcher, and '
            f"'{go}' is {version}",
            _GO_HINT,
        )
    return go, version


def launcher_binary(arch: str, progress: Callable[[str], None]) -> Path:
    """The launcher for Linux on `arch` ("x86_64"/"arm64"), from the cache or built now (then
    `progress` says so). `InputError` without a usable Go; `OperationError` (compiler output
    as detail) when the build fails."""
    _goarch(arch)
    go, version = go_toolchain()
    sources = launcher_sources()
    key = launcher_key(sources, version, arch)
    final = cache_root() / "launcher" / key / EXECUTABLE_NAME
    if final.is_file():
        return final
    progress(f"building mcp-deploy's launcher for {arch} with {version} (once per machine)")
    started = time.monotonic()
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent.parent))
    try:
        built = build_launcher(
            go, sources, arch, work, gocache=_gocache(go, arch), gomodcache=_gomodcache(go, arch)
        )
        built.chmod(0o755)
        os.replace(built, final)  # atomic; a concurrent build wrote the same bytes
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"built mcp-deploy's launcher for {arch} in {time.monotonic() - started:.1f}s")
    return final


def build_launcher(
    go: str,
    sources: Mapping[str, bytes],
    arch: str,
    work: Path,
    *,
    gocache: str | None = None,
    gomodcache: str | None = None,
) -> Path:
    """Compile `sources` (written to `work/src`) for Linux on `arch` into
    `work/mcp-deploy-launch` and return its path, the modules go.sum names downloaded first
    when they are missing (`download_modules`). `OperationError` with the compiler's output
    when the build fails or times out."""
    source_dir = work / "src"
    source_dir.mkdir(parents=True)
    for name, data in sources.items():
        (source_dir / name).write_bytes(data)
    if "go.sum" in sources:
        download_modules(go, source_dir, arch, gocache=gocache, gomodcache=gomodcache)
    output = work / EXECUTABLE_NAME
    command = [
        go,
        "build",
        "-trimpath",
        "-buildvcs=false",
        "-ldflags=-s -w -buildid=",
        "-o",
        str(output),
        ".",
    ]
    try:
        finished = subprocess.run(
            command,
            cwd=source_dir,
            env=go_environment(arch, gocache, gomodcache),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OperationError(
            f"building mcp-deploy's launcher for {arch} took longer than {BUILD_TIMEOUT}s"
        ) from None
    except OSError as error:
        raise OperationError(f"could not run {go}: {error}") from None
    if finished.returncode != 0 or not output.is_file():
        tail = finished.stdout.splitlines()[-OUTPUT_TAIL:]
        raise OperationError(
            f"building mcp-deploy's launcher for {arch} failed (exit status {finished.returncode})",
            hint="this is a bug in mcp-deploy or in the Go toolchain; the output is above",
            detail="\n".join(tail),
        )
    return output


def download_modules(
    go: str,
    source_dir: Path,
    arch: str,
    *,
    gocache: str | None = None,
    gomodcache: str | None = None,
) -> None:
    """Make sure the modules of the launcher in `source_dir` are in the module cache
    (`gomodcache`, else the user's): offline first (nothing to do when they are there), else
    from the Go module proxy. `OperationError` with Go's output when they cannot be had."""
    env = download_environment(arch, gocache, gomodcache)
    offline = _run_go([go, "mod", "download"], source_dir, {**env, "GOPROXY": "off"})
    if offline.returncode == 0:
        return
    finished = _run_go([go, "mod", "download"], source_dir, env, DOWNLOAD_TIMEOUT)
    if finished.returncode != 0:
        tail = finished.stdout.splitlines()[-OUTPUT_TAIL:]
        raise OperationError(
            f"could not download the Go modules of mcp-deploy's launcher from {env['GOPROXY']}",
            hint="the launcher needs github.com/golang-jwt/jwt/v5 and "
            "golang.org/x/crypto/x509roots/fallback once per machine: set GOPROXY to a Go module "
            "proxy this machine reaches (they are then kept in the Go module cache)",
            detail="\n".join(tail),
        )


def _run_go(
    command: list[str], cwd: Path, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a `go` command, output (stdout and stderr) as text; a timeout or a `go` that does
    not start is an `OperationError`."""
    try:
        return subprocess.run(
            command,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OperationError(f"'{' '.join(command)}' took longer than {timeout:.0f}s") from None
    except OSError as error:
        raise OperationError(f"could not run {command[0]}: {error}") from None


def _gocache(go: str, arch: str) -> str | None:
    """None to keep the user's own GOCACHE (the environment's, the go env file's, or Go's
    default) when it is usable; else a directory in mcp-deploy's cache (e.g. HOME is not
    writable)."""
    return _go_directory(go, arch, "GOCACHE", cache_root() / "launcher" / "go-build")


def _gomodcache(go: str, arch: str) -> str | None:
    """None to keep the user's own Go module cache (GOMODCACHE, the go env file's, or Go's
    default ~/go/pkg/mod) when it can be written; else `cache_root()/go-modules`."""
    return _go_directory(go, arch, "GOMODCACHE", cache_root() / "go-modules")


def _go_directory(go: str, arch: str, variable: str, fallback: Path) -> str | None:
    """None when the user's `variable` (set in the environment, or as `go env` says) is a
    usable directory; else `fallback`."""
    if os.environ.get(variable):
        return None
    try:
        finished = subprocess.run(
            [go, "env", variable],
            env=go_environment(arch),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        current = finished.stdout.strip() if finished.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        current = ""
    if current and current != "off" and _writable(Path(current)):
        return None
    return str(fallback)


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK | os.X_OK)
