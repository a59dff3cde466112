#!/usr/bin/env python3
"""mcp-deploy's build against the conventional peers, side by side, for `examples/toolbox`.

(a) OCI image vs `docker build` of the Dockerfile a user would write (FROM a pip-capable
    Debian base made like the tests' base; `pip install -r requirements.txt uvicorn`; COPY the
    app; CMD uvicorn), built with `docker build --network host` (Docker's legacy builder).
(b) Lambda zip vs the conventional `pip install -t package -r requirements.txt mangum`, copy the
    app and a `handler = Mangum(app)` module, `zip -r`.
(c) Reproducibility: every cold build starts from a fresh cache dir and store, so the cold
    builds (and the untimed warm-up build) of each mcp-deploy artifact are N clean rebuilds.

Conditions. Cold build, mcp-deploy: empty MCP_DEPLOY_CACHE_DIR and store, uv's own download
cache warm (the warm-up build fills it). Cold build, docker: `--no-cache`, base already pulled,
pip downloads from PyPI (`--no-cache-dir`, as the Dockerfile says). Cold build, pip zip: a
fresh directory, pip's own HTTP/wheel cache warm. Rebuild: a one-line change to
toolbox/app.py, then mcp-deploy with its warm cache and store, `docker build` with its layer
cache (the dependency layer cached), the pip-zip script re-run in full (pip cache warm).
Cold start: container or runtime-client spawn to the first successful MCP `initialize`.

Each round runs the four cold builds, then makes two one-line edits, each followed by the
four rebuilds; every batch runs in an order shuffled per round. Cold starts alternate which
side goes first. uvicorn and mangum are pinned to the versions mcp-deploy's shims use. Writes
bench/results/build.md and .json. Needs `scripts/services start` (Docker, registry :5000).

Usage: .venv/bin/python bench/build.py [--rounds N] [--start-rounds N]
Goals: image rebuild after an app-only change ≤ 0.3x docker's cached rebuild; image ≤ 0.7x
the docker-built image (compressed); Lambda cold start ≤ 0.8x the pip zip's; 100% of clean
builds reproduce the same digest.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import platform
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import _common, _peers  # noqa: E402
from orchestrator.build.interpreters import find_python  # noqa: E402
from targets.aws_lambda.events import function_url_event, response_body  # noqa: E402
from targets.aws_lambda.local_runtime import runtime_python  # noqa: E402
from targets.aws_lambda.runtime_api import RuntimeAPI  # noqa: E402
from tests.support.debian_base import python_base_image  # noqa: E402
from tests.support.mcp_wire import INITIALIZE as _INITIALIZE  # noqa: E402

EXAMPLE = REPO / "examples" / "toolbox"
CLI = str(REPO / ".venv" / "bin" / "mcp-deploy")
REGISTRY = "127.0.0.1:5000"
PEER_REPOSITORY = "bench/toolbox-docker"
PYTHON = "3.11"
EDITS_PER_ROUND = 2
WARM_INVOCATIONS = 3
GOALS = {"image_rebuild": 0.3, "image_size": 0.7, "lambda_cold_start": 0.8}
INITIALIZE = json.dumps(_INITIALIZE).encode()
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


# -- bookkeeping: everything this run creates, removed at the end ----------------------------


@dataclass
class Created:
    """Containers, Docker images and registry manifests this run made (removed in `close`)."""

    containers: set[str] = field(default_factory=set)
    images: list[str] = field(default_factory=list)  # ids or references, removal in reverse
    manifests: list[tuple[str, str]] = field(default_factory=list)  # (repository, digest)

    def close(self) -> None:
        for container in sorted(self.containers):
            docker("rm", "-f", container)
        for image in reversed(self.images):
            docker("rmi", image)
        for repository, digest in self.manifests:
            _peers.delete_manifest(REGISTRY, repository, digest)


def docker(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, env=env, check=False, timeout=600
    )


def docker_ok(*args: str) -> str:
    done = docker(*args)
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def timed(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one command, which must succeed."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        output = (done.stderr + done.stdout).strip()[-3000:]
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({done.returncode}):\n{output}")
    return elapsed


# -- the four builders -----------------------------------------------------------------------


def copy_example(destination: Path) -> Path:
    shutil.copytree(
        EXAMPLE, destination, ignore=shutil.ignore_patterns(".mcp-deploy", "__pycache__")
    )
    return destination


def edit_app(project: Path, label: str) -> None:
    """The one-line change: one more line in toolbox/app.py."""
    with (project / "toolbox" / "app.py").open("a") as app:
        app.write(f'BENCH_EDIT = "{label}"\n')


@dataclass
class McpDeployProject:
    """A copy of the example for mcp-deploy, with its own cache dir (store: .mcp-deploy/)."""

    root: Path
    target: str  # "cloudrun" or "lambda"
    cache: Path

    @classmethod
    def create(cls, root: Path, target: str, base: str) -> McpDeployProject:
        copy_example(root)
        spec = root / "mcp-deploy.toml"
        text = spec.read_text().replace(
            'registry = "europe-west1-docker.pkg.dev/acme-mcp/mcp"',
            f'registry = "{REGISTRY}/bench"\nbase = "{base}"',
        )
        if f'base = "{base}"' not in text:
            raise RuntimeError("examples/toolbox/mcp-deploy.toml changed: cannot set the base")
        spec.write_text(text)
        return cls(root, target, root.parent / f"{root.name}-cache")

    def run(self, *extra: str) -> tuple[float, dict[str, Any]]:
        env = {**os.environ, "MCP_DEPLOY_CACHE_DIR": str(self.cache)}
        argv = [CLI, "--spec", str(self.root / "mcp-deploy.toml"), "build", "--target"]
        argv += [self.target, "--json", *extra]
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"mcp-deploy build failed:\n{(done.stderr + done.stdout)[-3000:]}")
        (artifact,) = json.loads(done.stdout)["artifacts"]
        return elapsed, artifact

    def build(self) -> tuple[float, str]:
        elapsed, artifact = self.run()
        return elapsed, str(artifact["digest"])


@dataclass
class DockerProject:
    """A copy of the example with the conventional Dockerfile, built by the legacy builder."""

    root: Path
    created: Created
    base_id: str

    @classmethod
    def create(cls, root: Path, base: str, created: Created, base_id: str) -> DockerProject:
        copy_example(root)
        dockerfile = _peers.DOCKERFILE.format(base=base, uvicorn=_peers.UVICORN)
        (root / "Dockerfile").write_text(dockerfile)
        return cls(root, created, base_id)

    def build(self, cache: bool) -> tuple[float, str]:
        iid = self.root / "iid"
        iid.unlink(missing_ok=True)
        argv = ["docker", "build", "--network", "host", "--force-rm", "--iidfile", str(iid)]
        argv += [] if cache else ["--no-cache"]
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        start = time.perf_counter()
        done = subprocess.run(
            [*argv, str(self.root)], env=env, capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - start
        # The legacy builder leaves one image per step; remember each for the cleanup.
        for step in re.findall(r"^ ---> ([0-9a-f]{12})\s*$", done.stdout, re.MULTILINE):
            if not self.base_id.startswith(f"sha256:{step}") and step not in self.created.images:
                self.created.images.append(step)
        if done.returncode != 0:
            raise RuntimeError(f"docker build failed:\n{(done.stderr + done.stdout)[-3000:]}")
        image = iid.read_text().strip()
        self.created.images.append(image)
        return elapsed, image


@dataclass
class PipZipProject:
    """A copy of the example with a Mangum handler and the conventional packaging script."""

    root: Path

    @classmethod
    def create(cls, root: Path, python: str) -> PipZipProject:
        copy_example(root)
        (root / "handler.py").write_text(_peers.LAMBDA_HANDLER)
        script = _peers.LAMBDA_SCRIPT.format(python=python, mangum=_peers.MANGUM)
        (root / "build.sh").write_text(script)
        return cls(root)

    @property
    def zip(self) -> Path:
        return self.root / "lambda.zip"

    def build(self) -> tuple[float, str]:
        elapsed = timed(["sh", "build.sh"], cwd=self.root)
        return elapsed, "sha256:" + hashlib.sha256(self.zip.read_bytes()).hexdigest()


# -- cold starts -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def initialize_over_http(url: str, token: str) -> bool:
    request = urllib.request.Request(
        url,
        data=INITIALIZE,
        method="POST",
        headers={**MCP_HEADERS, "authorization": f"Bearer {token}"},
    )
    try:
        with _HTTP.open(request, timeout=5) as response:
            body = json.loads(response.read())
    except (OSError, ValueError):
        return False
    return bool(body.get("result", {}).get("serverInfo"))


def container_cold_start(
    image: str, created: Created, env: dict[str, str], names: list[str], command: list[str]
) -> float:
    """Seconds from `docker run` to the first successful MCP initialize on 127.0.0.1."""
    port = free_port()
    argv = ["docker", "run", "-d", "--network", "host", "-e", f"PORT={port}"]
    for name in names:
        argv += ["-e", name]
    argv += [image, *[part.format(port=port) for part in command]]
    url = f"http://127.0.0.1:{port}/mcp"
    start = time.perf_counter()
    runner = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    container = ""
    try:
        deadline = start + 90
        while not initialize_over_http(url, env["MCP_AUTH_TOKEN"]):
            if time.perf_counter() > deadline or (runner.poll() not in (None, 0)):
                raise RuntimeError(f"{image} never answered initialize: {runner.communicate()}")
            time.sleep(0.005)
        elapsed = time.perf_counter() - start
        out, _ = runner.communicate(timeout=60)
        container = out.decode().strip()
        return elapsed
    finally:
        if not container:
            out, _ = runner.communicate(timeout=60)
            container = out.decode().strip()
        if container:
            created.containers.add(container)
            docker("rm", "-f", container)
            created.containers.discard(container)


def lambda_cold_start(
    task_root: Path, handler: str, python: Path, env: dict[str, str], warm: int = 0
) -> tuple[float, list[bool]]:
    """Seconds from spawning `python -m awslambdaric` (event already queued) to the response
    to an MCP initialize, the task root mounted read-only as on Lambda; then `warm` more
    initialize invocations of the same process, and whether each was answered."""
    headers = {**MCP_HEADERS, "authorization": f"Bearer {env['MCP_AUTH_TOKEN']}"}
    event = function_url_event("POST", "/mcp", headers=headers, body=INITIALIZE)
    runtime = f"{python} -m awslambdaric {handler}"
    read_only = f"mount --bind {task_root} {task_root} && mount -o remount,bind,ro {task_root}"
    answered: list[tuple[float, Any]] = []
    with RuntimeAPI("toolbox-bench") as api:
        invoker = threading.Thread(target=_invoke_and_stamp, args=(api, event, answered))
        invoker.start()
        while api._queue.qsize() == 0 and invoker.is_alive():  # queued before the spawn
            time.sleep(0.001)
        start = time.perf_counter()
        proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"{read_only} && exec {runtime}",
            ],
            cwd=task_root,
            env={**env, "AWS_LAMBDA_RUNTIME_API": api.address, "LAMBDA_TASK_ROOT": str(task_root)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        warm_answers: list[bool] = []
        try:
            invoker.join(100)
            for _ in range(warm if answered else 0):
                warm_answers.append(_initialized(api.invoke(event, 60)))
        finally:
            proc.terminate()
            log, _ = proc.communicate(timeout=30)
    if not answered:
        raise RuntimeError(f"{handler} never answered: {log.decode()[-2000:]}")
    stamp, outcome = answered[0]
    if not _initialized(outcome):
        raise RuntimeError(f"{handler}: {outcome.kind} {outcome.body[:500]!r} {log[-2000:]!r}")
    return stamp - start, warm_answers


def _initialized(outcome: Any) -> bool:
    """Whether a Runtime API outcome is a Function URL response to a successful initialize."""
    if outcome.kind != "response" or outcome.json().get("statusCode") != 200:
        return False
    body = json.loads(response_body(outcome.json()))
    return bool(body.get("result", {}).get("serverInfo"))


def _invoke_and_stamp(api: RuntimeAPI, event: Any, answered: list[tuple[float, Any]]) -> None:
    outcome = api.invoke(event, 90)
    answered.append((time.perf_counter(), outcome))


# -- the run ---------------------------------------------------------------------------------


def shuffled(rng: random.Random, names: list[str]) -> list[str]:
    order = list(names)
    rng.shuffle(order)
    return order


def measure(args: argparse.Namespace, work: Path, created: Created) -> dict[str, Any]:
    rng = random.Random(0)
    samples: dict[str, list[float]] = collections.defaultdict(list)
    digests: dict[str, list[str]] = collections.defaultdict(list)

    progress("base images: the tests' Python base, and the pip-capable base for the Dockerfile")
    base = python_base_image()
    pip_base = _peers.pip_base_image()
    if docker("image", "inspect", pip_base).returncode != 0:
        docker_ok("pull", "-q", pip_base)
        created.images.insert(0, pip_base)  # removed last
    base_id = docker_ok("image", "inspect", "--format", "{{.Id}}", pip_base)
    python = find_python(PYTHON)
    lambda_python = runtime_python(PYTHON)

    def projects(root: Path) -> dict[str, Any]:
        return {
            "image": McpDeployProject.create(root / "image", "cloudrun", base),
            "docker": DockerProject.create(root / "docker", pip_base, created, base_id),
            "lambda": McpDeployProject.create(root / "lambda", "lambda", base),
            "pipzip": PipZipProject.create(root / "pipzip", python),
        }

    def cold(project: Any) -> tuple[float, str]:
        if isinstance(project, DockerProject):
            return project.build(cache=False)
        result: tuple[float, str] = project.build()
        return result

    def rebuild(project: Any) -> float:
        if isinstance(project, DockerProject):
            return project.build(cache=True)[0]
        elapsed: float = project.build()[0]
        return elapsed

    names = ["image", "docker", "lambda", "pipzip"]
    progress("warm-up builds (untimed; fill uv's and pip's download caches; measured below)")
    kept = projects(work / "warmup")
    for name in names:
        digests[name].append(cold(kept[name])[1])

    for round_number in range(1, args.rounds + 1):
        root = work / f"round-{round_number}"
        first_image = len(created.images)
        current = projects(root)
        for name in shuffled(rng, names):
            elapsed, digest = cold(current[name])
            samples[f"{name}_cold"].append(elapsed)
            digests[name].append(digest)
            progress(f"round {round_number}/{args.rounds}: cold build {name}: {elapsed:.2f}s")
        for edit in range(1, EDITS_PER_ROUND + 1):
            for project in current.values():
                edit_app(project.root, f"round {round_number} edit {edit}")
            for name in shuffled(rng, names):
                samples[f"{name}_rebuild"].append(rebuild(current[name]))
        rebuilt = ", ".join(f"{n} {samples[f'{n}_rebuild'][-1]:.2f}s" for n in names)
        progress(f"round {round_number}/{args.rounds}: rebuilds: {rebuilt}")
        for image in reversed(created.images[first_image:]):
            docker("rmi", image)
        del created.images[first_image:]
        shutil.rmtree(root)

    progress("sizes: pushing both images to the local registry")
    sizes = image_sizes(kept["image"], kept["docker"], created)
    sizes.update(zip_sizes(kept["lambda"], kept["pipzip"]))

    progress("cold starts")
    token, api_key = secrets.token_hex(16), secrets.token_hex(16)
    env = {**os.environ, "MCP_AUTH_TOKEN": token, "TOOLBOX_API_KEY": api_key}
    env["MCP_DEPLOY_HOST"] = "127.0.0.1"
    secret_names = ["MCP_AUTH_TOKEN", "TOOLBOX_API_KEY"]
    peer_command = ["python3", "-m", "uvicorn", "toolbox.app:app", "--host", "127.0.0.1"]
    peer_command += ["--port", "{port}"]
    lambda_env = {
        "PATH": os.environ["PATH"],
        "AWS_LAMBDA_FUNCTION_NAME": "toolbox-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "MCP_AUTH_TOKEN": token,
        "TOOLBOX_API_KEY": api_key,
    }
    task_mcp, task_pip = work / "task-mcp-deploy", work / "task-pipzip"
    for archive, task_root in ((sizes["lambda_path"], task_mcp), (kept["pipzip"].zip, task_pip)):
        task_root.mkdir()
        subprocess.run(["unzip", "-q", str(archive), "-d", str(task_root)], check=True)
    starts: dict[str, Callable[[], float]] = {
        "image_start": lambda: container_cold_start(
            sizes["image_location"], created, env, [*secret_names, "MCP_DEPLOY_HOST"], []
        ),
        "docker_start": lambda: container_cold_start(
            sizes["docker_location"], created, env, secret_names, peer_command
        ),
        "lambda_start": lambda: lambda_cold_start(
            task_mcp, "mcp_deploy_lambda.handler", lambda_python, lambda_env
        )[0],
        "pipzip_start": lambda: lambda_cold_start(
            task_pip, "handler.handler", lambda_python, lambda_env
        )[0],
    }
    for start in starts.values():  # warm the page cache; not counted
        start()
    # Not timed: do warm invocations of the same process answer too?
    warm_invocations = {
        "lambda": lambda_cold_start(
            task_mcp, "mcp_deploy_lambda.handler", lambda_python, lambda_env, WARM_INVOCATIONS
        )[1],
        "pipzip": lambda_cold_start(
            task_pip, "handler.handler", lambda_python, lambda_env, WARM_INVOCATIONS
        )[1],
    }
    pairs = [("image_start", "docker_start"), ("lambda_start", "pipzip_start")]
    for round_number in range(args.start_rounds):
        for pair in pairs:
            for name in pair if round_number % 2 == 0 else reversed(pair):
                samples[name].append(starts[name]())
        progress(
            f"cold start round {round_number + 1}/{args.start_rounds}: "
            + ", ".join(f"{name} {samples[name][-1]:.2f}s" for pair in pairs for name in pair)
        )
    return {"samples": dict(samples), "digests": dict(digests), "sizes": sizes, "base": base,
            "pip_base": pip_base, "warm_invocations": warm_invocations}  # fmt: skip


def image_sizes(image: McpDeployProject, peer: DockerProject, created: Created) -> dict[str, Any]:
    """Compressed (config + layers, from each manifest in the registry) and uncompressed
    (`docker image inspect` Size) sizes of both images; also what each adds to its base."""
    _, artifact = image.run("--push")
    location = str(artifact["location"])
    repository = location.split("/", 1)[1].split("@", 1)[0]
    digest, manifest = _peers.fetch_manifest(REGISTRY, repository, artifact["digest"])
    created.manifests.append((repository, digest))
    if docker("image", "inspect", location).returncode != 0:
        docker_ok("pull", "-q", location)
        created.images.append(location)
    tag = f"{REGISTRY}/{PEER_REPOSITORY}:bench-{os.getpid()}"
    peer_id = _last_built(peer)
    docker_ok("tag", peer_id, tag)
    created.images.append(tag)
    docker_ok("push", tag)
    peer_digest, peer_manifest = _peers.fetch_manifest(
        REGISTRY, PEER_REPOSITORY, tag.rsplit(":", 1)[1]
    )
    created.manifests.append((PEER_REPOSITORY, peer_digest))
    return {
        "image_location": location,
        "docker_location": peer_id,
        "image_compressed": _peers.compressed_size(manifest),
        "docker_compressed": _peers.compressed_size(peer_manifest),
        "image_above_base": sum(layer["size"] for layer in manifest["layers"][1:]),
        "docker_above_base": sum(layer["size"] for layer in peer_manifest["layers"][1:]),
        "image_base_layer": manifest["layers"][0]["size"],
        "docker_base_layer": peer_manifest["layers"][0]["size"],
        "image_uncompressed": int(docker_ok("image", "inspect", "--format", "{{.Size}}", location)),
        "docker_uncompressed": int(docker_ok("image", "inspect", "--format", "{{.Size}}", peer_id)),
    }


def _last_built(peer: DockerProject) -> str:
    return (peer.root / "iid").read_text().strip()


def zip_sizes(image: McpDeployProject, peer: PipZipProject) -> dict[str, Any]:
    _, artifact = image.run()
    path = Path(artifact["path"])
    sizes: dict[str, Any] = {"lambda_path": path}
    for name, archive in (("lambda", path), ("pipzip", peer.zip)):
        with zipfile.ZipFile(archive) as opened:
            infos = opened.infolist()
        sizes[f"{name}_zipped"] = archive.stat().st_size
        sizes[f"{name}_unzipped"] = sum(info.file_size for info in infos)
        sizes[f"{name}_files"] = sum(1 for info in infos if not info.is_dir())
    return sizes


# -- results ---------------------------------------------------------------------------------

MB = 1_000_000


def results(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    samples: dict[str, list[float]] = data["samples"]
    sizes: dict[str, Any] = data["sizes"]
    rows: list[dict[str, Any]] = []

    def add(section: str, metric: str, unit: str, ours: str, peer: str, goal: str = "") -> None:
        if unit == "s":
            mine, theirs = statistics.median(samples[ours]), statistics.median(samples[peer])
            spread = {
                "mcp_deploy_samples": [round(v, 4) for v in samples[ours]],
                "peer_samples": [round(v, 4) for v in samples[peer]],
            }
        else:
            mine, theirs = sizes[ours] / MB, sizes[peer] / MB
            spread = {}
        ratio = mine / theirs
        limit = GOALS.get(goal)
        rows.append(
            {
                "section": section,
                "metric": metric,
                "unit": unit,
                "mcp_deploy": round(mine, 3),
                "peer": round(theirs, 3),
                "ratio_to_peer": round(ratio, 3),
                "goal_ratio": limit,
                "meets_goal": None if limit is None else ratio <= limit,
                **spread,
            }
        )

    image, lam = "(a) OCI image vs docker build", "(b) Lambda zip vs pip install -t + zip"
    add(image, "cold build", "s", "image_cold", "docker_cold")
    add(image, "rebuild after a one-line app change", "s", "image_rebuild", "docker_rebuild",
        "image_rebuild")  # fmt: skip
    add(image, "image size, compressed (config + layers)", "MB", "image_compressed",
        "docker_compressed", "image_size")  # fmt: skip
    add(image, "… of which layers above the base", "MB", "image_above_base", "docker_above_base")
    add(image, "image size, uncompressed (docker image inspect)", "MB", "image_uncompressed",
        "docker_uncompressed")  # fmt: skip
    add(image, "cold start to first MCP initialize", "s", "image_start", "docker_start")
    add(lam, "cold build", "s", "lambda_cold", "pipzip_cold")
    add(lam, "rebuild after a one-line app change", "s", "lambda_rebuild", "pipzip_rebuild")
    add(lam, "zip size", "MB", "lambda_zipped", "pipzip_zipped")
    add(lam, "unzipped size", "MB", "lambda_unzipped", "pipzip_unzipped")
    add(lam, "cold start to first MCP initialize", "s", "lambda_start", "pipzip_start",
        "lambda_cold_start")  # fmt: skip

    reproducibility = {}
    for name, label in (
        ("image", "mcp-deploy OCI image (manifest digest)"),
        ("lambda", "mcp-deploy Lambda zip (sha256)"),
        ("docker", "docker build --no-cache (image id; peer, no goal)"),
        ("pipzip", "pip install -t + zip -r (sha256; peer, no goal)"),
    ):
        found = data["digests"][name]
        same = collections.Counter(found).most_common(1)[0][1]
        reproducibility[name] = {
            "artifact": label,
            "clean_builds": len(found),
            "identical": same,
            "fraction": round(same / len(found), 3),
            "distinct_digests": sorted(set(found)),
            "meets_goal": (same == len(found)) if name in ("image", "lambda") else None,
        }
    return {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "rounds": args.rounds,
            "rebuilds_per_round": EDITS_PER_ROUND,
            "cold_start_rounds": args.start_rounds,
            "python": platform.python_version(),
            "machine": _common.machine(),
            "docker": docker_ok("version", "--format", "{{.Server.Version}}"),
            "docker_builder": "legacy builder (DOCKER_BUILDKIT=0, buildx is not installed)",
            "mcp_deploy_base": data["base"],
            "docker_base": data["pip_base"],
            "base_layers_compressed_mb": {
                "mcp_deploy": round(sizes["image_base_layer"] / MB, 3),
                "docker": round(sizes["docker_base_layer"] / MB, 3),
            },
            "lambda_files": {"mcp_deploy": sizes["lambda_files"], "peer": sizes["pipzip_files"]},
            "runtime_seconds": round(time.monotonic() - _STARTED, 1),
        },
        "rows": rows,
        "reproducibility": reproducibility,
        "lambda_warm_invocations": {
            "mcp_deploy": data["warm_invocations"]["lambda"],
            "peer": data["warm_invocations"]["pipzip"],
        },
    }


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [
        "# Build: mcp-deploy against the conventional peers",
        "",
        f"Measured {meta['date']} by `bench/build.py` on {meta['machine']}, Python "
        f"{meta['python']}, Docker {meta['docker']}, {meta['docker_builder']}: "
        f"{meta['rounds']} rounds of cold builds and {meta['rounds'] * meta['rebuilds_per_round']}"
        f" rebuilds of each, {meta['cold_start_rounds']} cold starts of each; medians. The "
        f"example server `examples/toolbox`, Python 3.11, Lambda x86_64. Run time "
        f"{meta['runtime_seconds']:.0f} s.",
        "",
        "| | metric | mcp-deploy | peer | ratio to peer | goal |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    section = ""
    for row in result["rows"]:
        shown = row["section"] if row["section"] != section else ""
        section = row["section"]
        unit = row["unit"]
        goal = (
            ""
            if row["goal_ratio"] is None
            else f"≤ {row['goal_ratio']}x — {'met' if row['meets_goal'] else 'NOT met'}"
        )
        lines.append(
            f"| {shown} | {row['metric']} | {row['mcp_deploy']:.2f} {unit} | "
            f"{row['peer']:.2f} {unit} | {row['ratio_to_peer']:.2f}x | {goal} |"
        )
    warm = result["lambda_warm_invocations"]
    lines += [
        "",
        f"Lambda warm invocations (not timed: {WARM_INVOCATIONS} more initialize events to the "
        f"same runtime process after its cold start) answered: mcp-deploy "
        f"{sum(warm['mcp_deploy'])}/{len(warm['mcp_deploy'])}, the plain `Mangum(app)` handler "
        f"{sum(warm['peer'])}/{len(warm['peer'])}.",
    ]
    lines += [
        "",
        "(c) Reproducibility: clean builds (fresh MCP_DEPLOY_CACHE_DIR and store each: the "
        "warm-up build and every cold build) giving the same digest.",
        "",
        "| artifact | clean builds | identical | goal |",
        "| --- | ---: | ---: | --- |",
    ]
    for entry in result["reproducibility"].values():
        goal = "" if entry["meets_goal"] is None else (
            "100% — met" if entry["meets_goal"] else "100% — NOT met"
        )  # fmt: skip
        lines.append(
            f"| {entry['artifact']} | {entry['clean_builds']} | "
            f"{entry['identical']}/{entry['clean_builds']} ({entry['fraction']:.0%}) | {goal} |"
        )
    base = meta["base_layers_compressed_mb"]
    lines += [
        "",
        "## Conditions",
        "",
        "- **Peers.** Image: the Dockerfile in `bench/_peers.py` (`FROM` the pip-capable base, "
        "`COPY requirements.txt .`, `RUN pip install --no-cache-dir -r requirements.txt "
        f"{_peers.UVICORN}`, `COPY toolbox/ toolbox/`, `CMD` uvicorn), `docker build --network "
        f"host`. Zip: `pip install -t package -r requirements.txt {_peers.MANGUM}`, the app and "
        "a `handler = Mangum(app)` module copied in, `zip -r`. uvicorn and mangum are pinned to "
        "the versions mcp-deploy's shims use, so both sides install the same set.",
        f"- **Bases.** mcp-deploy: the tests' Debian Python base ({base['mcp_deploy']:.1f} MB "
        "compressed). Docker: the same recipe plus Debian's python3-pip, setuptools, wheel, "
        f"distutils and dash for `/bin/sh` ({base['docker']:.1f} MB), running as root without "
        "the `EXTERNALLY-MANAGED` marker like `python:3.11-slim`, and trusting the host's CA "
        "bundle (PyPI is reached through a TLS-intercepting proxy here). Both images' sizes "
        "include their base; the row below them shows what each adds on top.",
        "- **Cold build.** mcp-deploy: empty MCP_DEPLOY_CACHE_DIR and store, but uv's own "
        "download cache warm (an untimed warm-up build fills it); it also fetches the base's "
        "blobs from the local registry into its fresh store. Docker: `--no-cache`, base "
        "already pulled, pip downloading every wheel from PyPI (`--no-cache-dir`, as written). "
        "pip zip: a fresh directory, pip's own HTTP cache warm. All times include each tool's "
        "own start-up (the `mcp-deploy` CLI, the docker client, the shell script). The "
        "docker cold build is the only one that goes to the network, so it varies with PyPI.",
        "- **Rebuild.** One more line appended to toolbox/app.py, then: mcp-deploy with its warm "
        "cache and store; `docker build` with its layer cache (dependency layer cached, "
        "`COPY toolbox/` and `CMD` rebuilt); the pip-zip script re-run in full (pip cache warm), "
        "as a script without caching of its own does.",
        "- **Size.** Compressed: config + layers from each image's manifest in the local "
        "registry (the docker image is pushed there with `docker push`, gzip). Uncompressed: "
        "`docker image inspect` Size. MB = 10^6 bytes.",
        "- **Cold start.** From spawning `docker run -d --network host` (mcp-deploy's image with "
        "`-e MCP_DEPLOY_HOST -e MCP_AUTH_TOKEN -e TOOLBOX_API_KEY`; the plain image with its CMD "
        "given again with `--host 127.0.0.1 --port $PORT`, no auth) to the first successful "
        "MCP initialize POST with the bearer token, polled every 5 ms. Lambda: each zip unzipped "
        "(`unzip`, which keeps mtimes, so pip's timestamped .pyc stay valid), mounted read-only "
        "as /var/task is, run by `python -m awslambdaric` (Python 3.11, awslambdaric from "
        "`targets.aws_lambda.local_runtime`) against `RuntimeAPI` with the initialize event "
        "queued before the spawn; time from spawn to the response. One untimed start of each "
        "first; the two sides alternate which goes first.",
        "",
    ]
    return "\n".join(lines)


def exclusive() -> AbstractContextManager[None]:
    """One run at a time: two runs would skew each other's timings, and Docker's legacy
    builder could pick the other run's layers as cache."""
    return _common.exclusive(("bench-build.lock",), progress)


@contextmanager
def workspace() -> Iterator[tuple[Path, Created]]:
    work = Path(tempfile.mkdtemp(prefix="mcp-deploy-bench-build-"))
    created = Created()
    try:
        yield work, created
    finally:
        progress("cleaning up containers, images, registry manifests and temp dirs")
        created.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="cold-build rounds (default 5)")
    parser.add_argument(
        "--start-rounds", type=int, default=None, help="cold starts of each (default 3x rounds)"
    )
    args = parser.parse_args()
    if args.start_rounds is None:
        args.start_rounds = 3 * args.rounds
    if args.rounds < 1 or args.start_rounds < 1:
        parser.error("--rounds and --start-rounds must be at least 1")
    with exclusive():
        with workspace() as (work, created):
            data = measure(args, work, created)
        result = results(args, data)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "build.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (out / "build.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
