"""`--env local` for Cloud Run: the image from the store, run by the Docker engine through the
Docker SDK under Cloud Run's container contract.

- The image is loaded into the engine from the local store (a docker-archive stream of the
  very manifest that was built: same layers, same config digest) — no registry needed.
- `PORT`, `K_SERVICE`, `K_REVISION` and `K_CONFIGURATION` are set as Cloud Run sets them, with
  the environment's config as plain env vars; the spec's memory and CPU become the container's
  limits; the root filesystem is read-only with an in-memory /tmp (Cloud Run's /tmp is memory
  too); the network is the host's (`--network host`: no bridge network is ever created) and the
  server binds 127.0.0.1; stop is SIGTERM with Cloud Run's 10 s grace, then SIGKILL.
- The container listens on an internal port behind Cloud Run's front door (`front_door.py`),
  which presents Cloud Run's Host (`host_of`) and forwarding headers on the public port: a
  process of its own in the background (it ends with the container), a thread for `run`. The
  handle holds the container, the `host` and the front door; `alive` needs both running.
- Secret values go to the container's entry shim over its stdin at start (it sets them as env
  vars before importing the server), because the engine writes a container's env vars to disk
  (`config.v2.json`). In the cloud, Cloud Run sets them from Secret Manager.
- Unlike the cloud, the container (every runtime: Python, binary, Node) gets
  `MCP_DEPLOY_PUBLIC_URL=http://127.0.0.1:<public port>`, the loopback URL the client uses:
  the front door presents the run.app Host, and the gate's public base URL — the audience of
  oauth tokens, the resource in the Protected Resource Metadata, the Origin allowed without
  listing it — must be the URL the client actually called. In the cloud it is unset and the
  gate takes `(X-Forwarded-Proto or https)://` + Host. A value the user configures wins.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import processes
from orchestrator.errors import OperationError
from targets.base import LocalHandle, LocalLaunch, LocalProblem, TargetOptions
from targets.cloudrun import front_door
from targets.cloudrun.front_door import FrontDoor, FrontDoorConfig, presented_host
from targets.cloudrun.image_load import host_platform, load_image

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

GRACE_SECONDS = 10  # Cloud Run sends SIGKILL 10 s after SIGTERM
START_TIMEOUT = 60.0
LABEL = "dev.mcp-deploy"
SECRETS_STDIN_VARIABLE = "MCP_DEPLOY_SECRETS_STDIN"
PUBLIC_URL_VARIABLE = "MCP_DEPLOY_PUBLIC_URL"  # read by every gate (Python, Node, launcher)


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


def problem(options: TargetOptions, runtime: str = "python") -> LocalProblem | None:
    """The container runs natively: the image needs a variant for this machine."""
    from targets.cloudrun import CloudRunOptions

    assert isinstance(options, CloudRunOptions)
    host = host_platform()
    if host in options.platforms:
        return None
    return LocalProblem(
        "platforms",
        f"the image is built for {', '.join(options.platforms)} and this machine runs {host}",
        f'add "{host}" to targets.cloudrun.platforms to prove this image here',
    )


def _free_port(other_than: int = 0) -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    return port if port != other_than else _free_port(other_than)


def host_of(launch: LocalLaunch) -> str:
    """The Host header Cloud Run would present to this deployment's server:
    `<server>-<environment>-<hash10>.<region>.run.app` (region `us-central1` when unset)."""
    from targets.cloudrun import CloudRunOptions

    options = launch.options
    assert isinstance(options, CloudRunOptions)
    service = f"{launch.server}-{launch.environment}"
    return presented_host(options.project, service, options.region)


def container_name(launch: LocalLaunch, suffix: str = "") -> str:
    """Unique per project (a hash of its state dir) and environment."""
    project = hashlib.sha256(str(launch.state_dir).encode()).hexdigest()[:8]
    return f"mcp-deploy-{launch.server}-{launch.environment}-cloudrun-{project}{suffix}"


def _create(
    engine: DockerClient,
    launch: LocalLaunch,
    name: str,
    port: int,
    public_port: int,
    findable: bool = True,
) -> Container:
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
        PUBLIC_URL_VARIABLE: f"http://127.0.0.1:{public_port}",
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
            **({f"{LABEL}.state-dir": str(launch.state_dir)} if findable else {}),
            f"{LABEL}.host": host_of(launch),
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
    """Start the container on an internal port, then the front door process on the public
    one; return once both accept connections (nothing is left running when either fails)."""
    engine = client()
    port = launch.port or _free_port()
    internal = _free_port(other_than=port)
    host = host_of(launch)
    container = _create(engine, launch, container_name(launch), internal, port)
    try:
        _start(engine, container, dict(launch.secrets))
        _wait_ready(container, internal)
        container.reload()
        pid, started = front_door.watched_process(container.attrs["State"]["Pid"], container.id)
        config = FrontDoorConfig(host, internal, port, watch_pid=pid, watch_started=started)
        log = launch.state_dir / "front_door.log"
        door = front_door.start_process(config, log, owner=str(container.id))
    except BaseException:
        container.remove(force=True)
        raise
    return LocalHandle(
        url=f"http://127.0.0.1:{port}{launch.mcp_path}",
        data={
            "container": container.id,
            "name": container.name,
            "host": host,
            "upstream_port": internal,
            "front_door": door,
        },
    )


def run_foreground(launch: LocalLaunch, ready: Callable[[str], None]) -> None:
    """The container and an in-process front door; logs to stderr until KeyboardInterrupt."""
    engine = client()
    port = launch.port or _free_port()
    internal = _free_port(other_than=port)
    container = _create(engine, launch, container_name(launch, "-run"), internal, port, False)
    door = FrontDoor(FrontDoorConfig(host_of(launch), internal, port))
    try:
        _start(engine, container, dict(launch.secrets))
        _wait_ready(container, internal)
        try:
            door.start_thread()
        except OSError as error:
            message = f"the local Cloud Run front door cannot listen on 127.0.0.1:{port}"
            raise OperationError(f"{message}: {error}", hint="--port picks another") from None
        ready(f"http://127.0.0.1:{port}{launch.mcp_path}")
        for chunk in container.logs(stream=True, follow=True):
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
    finally:
        door.stop_thread()
        _stop_container(container)


def _find(handle: LocalHandle) -> Container | None:
    from docker.errors import NotFound

    if "container" not in handle.data:  # a front door found alone
        return None
    try:
        return client().containers.get(str(handle.data["container"]))
    except NotFound:
        return None


def find(state_dir: Path, mcp_path: str) -> list[LocalHandle]:
    """The background containers labelled with `state_dir` (running or not) and the front
    doors logging there, each door with the container it serves (a door alone when its
    container is gone), found without any state file."""
    doors = front_door.find_processes(state_dir / "front_door.log")
    label = f"{LABEL}.state-dir={state_dir}"
    handles = []
    for container in client().containers.list(all=True, filters={"label": label}):
        data: dict[str, Any] = {"container": container.id, "name": container.name}
        data["host"] = container.labels.get(f"{LABEL}.host", "")
        mine = [door for door in doors if door["owner"] == container.id]
        if mine:
            data["front_door"] = mine[0]
        port = mine[0]["port"] if mine else 0
        handles.append(LocalHandle(f"http://127.0.0.1:{port}{mcp_path}" if port else "", data))
    for door in doors:
        if not any(handle.data.get("front_door") is door for handle in handles):
            url = f"http://127.0.0.1:{door['port']}{mcp_path}" if door["port"] else ""
            handles.append(LocalHandle(url, {"front_door": door}))
    return handles


def alive(handle: LocalHandle) -> bool:
    """True while both the container and its front door run."""
    door = handle.data.get("front_door")
    if door is not None and not front_door.process_alive(door):
        return False
    container = _find(handle)
    return container is not None and container.status == "running"


def stop(handle: LocalHandle) -> None:
    """Close the front door (SIGTERM to its process group), then stop the container with
    Cloud Run's grace period and remove it."""
    door = handle.data.get("front_door")
    try:
        if door is not None:
            front_door.stop_process(door)
    finally:
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
