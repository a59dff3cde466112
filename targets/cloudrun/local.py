"""`--env local` for Cloud Run: the image from the store, run by the Docker engine through the
Docker SDK under Cloud Run's container contract.

- The image is loaded into the engine from the local store (a docker-archive stream of the
  very manifest that was built: same layers, same config digest) — no registry needed.
- `PORT`, `K_SERVICE`, `K_REVISION` and `K_CONFIGURATION` are set as Cloud Run sets them, with
  the environment's config as plain env vars; the spec's memory and CPU become the container's
  limits; the root filesystem is read-only with an in-memory /tmp (Cloud Run's /tmp is memory
  too); the network is the host's (`--network host`: no bridge network is ever created) and the
  server binds 127.0.0.1; stop is SIGTERM with Cloud Run's 10 s grace, then SIGKILL.
- Secret values go to the container's entry shim over its stdin at start (it sets them as env
  vars before importing the server), because the engine writes a container's env vars to disk
  (`config.v2.json`). In the cloud, Cloud Run sets them from Secret Manager.
"""

from __future__ import annotations

import io
import json
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import processes
from orchestrator.build.store import ArtifactStore
from orchestrator.errors import OperationError
from targets.base import LocalHandle, LocalLaunch, LocalProblem, TargetOptions, host_architecture

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

GRACE_SECONDS = 10  # Cloud Run sends SIGKILL 10 s after SIGTERM
START_TIMEOUT = 60.0
LABEL = "dev.mcp-deploy"
SECRETS_STDIN_VARIABLE = "MCP_DEPLOY_SECRETS_STDIN"
_MEDIA_INDEX = ("application/vnd.oci.image.index.v1+json",)


def client() -> DockerClient:
    """A Docker SDK client for the engine DOCKER_HOST names (default: the local socket)."""
    import docker
    from docker.errors import DockerException

    try:
        engine = docker.from_env(timeout=120)
        engine.ping()
    except DockerException as error:
        raise OperationError(
            "cannot reach a Docker engine to run the Cloud Run image locally",
            hint="start one (on the dev machines: scripts/services start) or set DOCKER_HOST",
            detail=str(error),
        ) from None
    return engine


def _host_platform() -> str:
    return "linux/arm64" if host_architecture() == "arm64" else "linux/amd64"


def problem(options: TargetOptions) -> LocalProblem | None:
    """The container runs natively: the image needs a variant for this machine."""
    from targets.cloudrun import CloudRunOptions

    assert isinstance(options, CloudRunOptions)
    host = _host_platform()
    if host in options.platforms:
        return None
    return LocalProblem(
        "platforms",
        f"the image is built for {', '.join(options.platforms)} and this machine runs {host}",
        f'add "{host}" to targets.cloudrun.platforms to prove this image here',
    )


def _manifest(store: ArtifactStore, digest: str) -> dict[str, Any]:
    """The image manifest for this machine's platform (`digest` may name an index)."""
    document: dict[str, Any] = json.loads(store.blob_path(digest).read_bytes())
    if document.get("mediaType") in _MEDIA_INDEX or "manifests" in document:
        wanted = _host_platform()
        for entry in document["manifests"]:
            found = entry.get("platform", {})
            if f"{found.get('os')}/{found.get('architecture')}" == wanted:
                return _manifest(store, entry["digest"])
        raise OperationError(
            f"the image has no {wanted} variant to run on this machine",
            hint=f'add "{wanted}" to targets.cloudrun.platforms',
        )
    return document


def load_image(engine: DockerClient, launch: LocalLaunch) -> str:
    """Load the artifact's image into the engine (once); return its image id."""
    from docker.errors import ImageNotFound

    store = ArtifactStore(launch.artifact.path.parents[2])  # <store>/blobs/sha256/<hex>
    manifest = _manifest(store, launch.artifact.digest)
    image_id = str(manifest["config"]["digest"])
    try:
        engine.images.get(image_id)
        return image_id
    except ImageNotFound:
        pass
    tag = f"mcp-deploy/{launch.server}:{launch.artifact.digest.removeprefix('sha256:')[:12]}"
    with tempfile.TemporaryFile(prefix="mcp-deploy-load-") as archive:
        _docker_archive(store, manifest, tag, archive)
        archive.seek(0)
        engine.images.load(archive)
    return image_id


def _docker_archive(store: ArtifactStore, manifest: dict[str, Any], tag: str, out: Any) -> None:
    """`docker save` format: manifest.json, the config, and each (compressed) layer."""
    import tarfile

    def add(name: str, path: Path | None = None, data: bytes | None = None) -> None:
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        if path is not None:
            info.size = path.stat().st_size
            with path.open("rb") as handle:
                archive.addfile(info, handle)
        else:
            assert data is not None
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

    config = manifest["config"]["digest"].removeprefix("sha256:")
    layers = [layer["digest"] for layer in manifest["layers"]]
    with tarfile.open(fileobj=out, mode="w") as archive:
        add(f"{config}.json", store.blob_path(manifest["config"]["digest"]))
        names = []
        for digest in layers:
            name = f"{digest.removeprefix('sha256:')}/layer.tar"
            add(name, store.blob_path(digest))
            names.append(name)
        index = [{"Config": f"{config}.json", "RepoTags": [tag], "Layers": names}]
        add("manifest.json", data=json.dumps(index).encode())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def container_name(launch: LocalLaunch, suffix: str = "") -> str:
    return f"mcp-deploy-{launch.server}-{launch.environment}-cloudrun{suffix}"


def _create(engine: DockerClient, launch: LocalLaunch, name: str, port: int) -> Container:
    from docker.errors import NotFound

    from targets.cloudrun import CloudRunOptions, memory_mib

    options = launch.options
    assert isinstance(options, CloudRunOptions)
    image_id = load_image(engine, launch)
    try:  # a leftover of an earlier run (a crash before its state was saved)
        stale = engine.containers.get(name)
        if stale.labels.get(f"{LABEL}.server") == launch.server:
            stale.remove(force=True)
    except NotFound:
        pass
    service = f"{launch.server}-{launch.environment}"
    environment = {
        "PORT": str(port),
        "K_SERVICE": service,
        "K_REVISION": f"{service}-{launch.artifact.digest.removeprefix('sha256:')[:5]}",
        "K_CONFIGURATION": service,
        "MCP_DEPLOY_HOST": "127.0.0.1",
        **launch.variables,
    }
    if launch.secrets:
        environment[SECRETS_STDIN_VARIABLE] = "1"
    mib = memory_mib(options.memory)
    return engine.containers.create(
        image_id,
        name=name,
        environment=environment,
        network_mode="host",
        read_only=True,
        tmpfs={"/tmp": f"rw,nosuid,nodev,size={mib}m"},
        mem_limit=f"{mib}m",
        nano_cpus=int(options.cpu * 1e9),
        stdin_open=bool(launch.secrets),  # with StdinOnce: EOF once the secrets are sent
        stop_signal="SIGTERM",
        labels={
            f"{LABEL}.server": launch.server,
            f"{LABEL}.environment": launch.environment,
            f"{LABEL}.digest": launch.artifact.digest,
        },
    )


def _start(engine: DockerClient, container: Container, secrets: dict[str, str]) -> None:
    """Start `container`, handing it `secrets` over stdin (never through the engine's env)."""
    if not secrets:
        container.start()
        return
    attached = engine.api.attach_socket(str(container.id), params={"stdin": 1, "stream": 1})
    raw: socket.socket = getattr(attached, "_sock", attached)
    try:
        container.start()
        raw.sendall(json.dumps(secrets).encode() + b"\n")
        raw.shutdown(socket.SHUT_WR)
    finally:
        raw.close()


def _wait_ready(container: Container, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        container.reload()
        if container.status in ("exited", "dead"):
            code = container.attrs.get("State", {}).get("ExitCode")
            log = _logs(container)
            error = processes.last_error(log)
            raise OperationError(
                f"the container exited during start-up (exit code {code})"
                + (f"\n  the server says: {error}" if error else ""),
                hint="its log is below; a server whose entry does not import stops here",
                detail=log,
            )
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise OperationError(
        f"nothing listened on port {port} within {START_TIMEOUT:.0f} s",
        hint="the server must listen on $PORT",
        detail=_logs(container),
    )


def _logs(container: Container, lines: int = 40) -> str:
    data = container.logs(tail=lines)
    return data.decode(errors="replace") if isinstance(data, bytes) else ""


def start_background(launch: LocalLaunch) -> LocalHandle:
    engine = client()
    port = launch.port or _free_port()
    container = _create(engine, launch, container_name(launch), port)
    try:
        _start(engine, container, dict(launch.secrets))
        _wait_ready(container, port)
    except BaseException:
        container.remove(force=True)
        raise
    return LocalHandle(
        url=f"http://127.0.0.1:{port}{launch.mcp_path}",
        data={"container": container.id, "name": container.name},
    )


def run_foreground(launch: LocalLaunch, ready: Callable[[str], None]) -> None:
    engine = client()
    port = launch.port or _free_port()
    container = _create(engine, launch, container_name(launch, "-run"), port)
    try:
        _start(engine, container, dict(launch.secrets))
        _wait_ready(container, port)
        ready(f"http://127.0.0.1:{port}{launch.mcp_path}")
        for chunk in container.logs(stream=True, follow=True):
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
    finally:
        _stop_container(container)


def _find(handle: LocalHandle) -> Container | None:
    from docker.errors import NotFound

    try:
        return client().containers.get(str(handle.data["container"]))
    except NotFound:
        return None


def alive(handle: LocalHandle) -> bool:
    container = _find(handle)
    return container is not None and container.status == "running"


def stop(handle: LocalHandle) -> None:
    container = _find(handle)
    if container is not None:
        _stop_container(container)


def _stop_container(container: Container) -> None:
    from docker.errors import NotFound

    try:
        container.stop(timeout=GRACE_SECONDS)
        container.remove(force=True)
    except NotFound:
        pass


def log_tail(handle: LocalHandle, lines: int = 40) -> str:
    container = _find(handle)
    return _logs(container, lines) if container is not None else ""


def follow_log(handle: LocalHandle) -> Iterator[str]:
    container = _find(handle)
    if container is None:
        return
    since = int(time.time())
    for chunk in container.logs(stream=True, follow=True, since=since):
        yield chunk.decode(errors="replace")
