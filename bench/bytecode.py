#!/usr/bin/env python3
"""`bytecode_only` side by side, for `examples/toolbox`: image and zip sizes and cold starts of
mcp-deploy's artifacts with and without the option, against the conventional peers of
bench/build.py (the Dockerfile image, the pip-install-t zip) for the size goal.

Cold starts as in bench/build.py: container spawn (`docker run`) or runtime-client spawn
(`python -m awslambdaric` on a read-only task root) to the first successful MCP initialize;
one untimed start of each first, then rounds alternating which variant goes first. Writes
bench/results/bytecode.md and .json. Needs `scripts/services start` (Docker, registry :5000).

Usage: .venv/bin/python bench/bytecode.py [--start-rounds N]
Goal: image ≤ 0.7x the docker-built image (compressed) with bytecode_only.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import _common, _peers  # noqa: E402
from bench.build import (  # noqa: E402
    MB,
    PYTHON,
    DockerProject,
    McpDeployProject,
    PipZipProject,
    container_cold_start,
    docker,
    docker_ok,
    exclusive,
    image_sizes,
    lambda_cold_start,
    progress,
    workspace,
    zip_sizes,
)
from orchestrator.build.interpreters import find_python  # noqa: E402
from targets.aws_lambda.local_runtime import runtime_python  # noqa: E402
from tests.support.debian_base import python_base_image  # noqa: E402

GOAL = 0.7
VARIANTS = ("plain", "bytecode_only")


def with_option(project: McpDeployProject) -> McpDeployProject:
    spec = project.root / "mcp-deploy.toml"
    text = spec.read_text()
    for table in ("[targets.lambda]", "[targets.cloudrun]"):
        if table not in text:
            raise RuntimeError(f"examples/toolbox/mcp-deploy.toml has no {table}")
        text = text.replace(table, f"{table}\nbytecode_only = true")
    spec.write_text(text)
    return project


def measure(rounds: int, work: Path, created: Any) -> dict[str, Any]:
    base = python_base_image()
    pip_base = _peers.pip_base_image()
    if docker("image", "inspect", pip_base).returncode != 0:
        docker_ok("pull", "-q", pip_base)
        created.images.insert(0, pip_base)
    base_id = docker_ok("image", "inspect", "--format", "{{.Id}}", pip_base)
    progress("peers: docker build of the conventional Dockerfile, pip install -t zip")
    peer = DockerProject.create(work / "docker", pip_base, created, base_id)
    peer.build(cache=False)
    pipzip = PipZipProject.create(work / "pipzip", find_python(PYTHON))
    pipzip.build()
    sizes: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        progress(f"{variant}: building and pushing the image, building the zip")
        image = McpDeployProject.create(work / f"{variant}-image", "cloudrun", base)
        zipped = McpDeployProject.create(work / f"{variant}-lambda", "lambda", base)
        if variant == "bytecode_only":
            with_option(image), with_option(zipped)
        sizes[variant] = {**image_sizes(image, peer, created), **zip_sizes(zipped, pipzip)}

    progress("cold starts")
    token, api_key = secrets.token_hex(16), secrets.token_hex(16)
    env = {**os.environ, "MCP_AUTH_TOKEN": token, "TOOLBOX_API_KEY": api_key}
    env["MCP_DEPLOY_HOST"] = "127.0.0.1"
    names = ["MCP_AUTH_TOKEN", "TOOLBOX_API_KEY", "MCP_DEPLOY_HOST"]
    lambda_python = runtime_python(PYTHON)
    lambda_env = {
        "PATH": os.environ["PATH"],
        "AWS_LAMBDA_FUNCTION_NAME": "toolbox-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "MCP_AUTH_TOKEN": token,
        "TOOLBOX_API_KEY": api_key,
    }
    starts: dict[str, Callable[[], float]] = {}
    for variant in VARIANTS:
        task_root = work / f"task-{variant}"
        task_root.mkdir()
        zip_path = sizes[variant]["lambda_path"]
        subprocess.run(["unzip", "-q", str(zip_path), "-d", str(task_root)], check=True)
        location: str = sizes[variant]["image_location"]

        def image_start(location: str = location) -> float:
            return container_cold_start(location, created, env, names, [])

        def lambda_start(root: Path = task_root) -> float:
            return lambda_cold_start(root, "mcp_deploy_lambda.handler", lambda_python, lambda_env)[
                0
            ]

        starts[f"image:{variant}"], starts[f"lambda:{variant}"] = image_start, lambda_start
    for start in starts.values():  # warm the page cache; not counted
        start()
    samples: dict[str, list[float]] = {name: [] for name in starts}
    for number in range(rounds):
        for kind in ("image", "lambda"):
            order = VARIANTS if number % 2 == 0 else tuple(reversed(VARIANTS))
            for variant in order:
                samples[f"{kind}:{variant}"].append(starts[f"{kind}:{variant}"]())
        progress(
            f"cold start round {number + 1}/{rounds}: "
            + ", ".join(f"{name} {values[-1]:.3f}s" for name, values in samples.items())
        )
    for entry in sizes.values():
        entry["lambda_path"] = str(entry["lambda_path"])
    return {"sizes": sizes, "samples": samples}


def results(data: dict[str, Any], rounds: int) -> dict[str, Any]:
    sizes, samples = data["sizes"], data["samples"]
    plain, only = sizes["plain"], sizes["bytecode_only"]
    rows = []
    for metric, key, peer_key in (
        ("image size, compressed (config + layers)", "image_compressed", "docker_compressed"),
        ("… of which layers above the base", "image_above_base", "docker_above_base"),
        ("image size, uncompressed (docker image inspect)", "image_uncompressed",
         "docker_uncompressed"),
        ("Lambda zip size", "lambda_zipped", "pipzip_zipped"),
        ("Lambda unzipped size", "lambda_unzipped", "pipzip_unzipped"),
    ):  # fmt: skip
        rows.append(
            {
                "metric": metric,
                "unit": "MB",
                "plain": round(plain[key] / MB, 3),
                "bytecode_only": round(only[key] / MB, 3),
                "peer": round(plain[peer_key] / MB, 3),
                "plain_to_peer": round(plain[key] / plain[peer_key], 3),
                "bytecode_only_to_peer": round(only[key] / plain[peer_key], 3),
            }
        )
    for kind, metric in (("image", "image cold start"), ("lambda", "Lambda cold start")):
        one, two = samples[f"{kind}:plain"], samples[f"{kind}:bytecode_only"]
        rows.append(
            {
                "metric": f"{metric} to first MCP initialize",
                "unit": "s",
                "plain": round(statistics.median(one), 4),
                "bytecode_only": round(statistics.median(two), 4),
                "plain_samples": [round(v, 4) for v in one],
                "bytecode_only_samples": [round(v, 4) for v in two],
            }
        )
    ratio = only["image_compressed"] / plain["docker_compressed"]
    return {
        "meta": {"machine": _common.machine(), "cold_start_rounds": rounds, "python": PYTHON},
        "rows": rows,
        "goal": {"image_size_ratio": GOAL, "measured": round(ratio, 3), "met": ratio <= GOAL},
    }


def markdown(result: dict[str, Any]) -> str:
    meta, goal = result["meta"], result["goal"]
    lines = [
        "# bytecode_only: sizes and cold starts with and without",
        "",
        f"Measured by `bench/bytecode.py` on {meta['machine']}: `examples/toolbox` (Python "
        f"{meta['python']}, Lambda x86_64), {meta['cold_start_rounds']} cold starts of each, "
        "medians. Peers as in bench/build.md (the conventional Dockerfile image; the "
        "`pip install -t` + `zip -r` package). MB = 10^6 bytes.",
        "",
        "| metric | without | bytecode_only | peer | without / peer | bytecode_only / peer |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["rows"]:
        unit = row["unit"]
        if unit == "MB":
            lines.append(
                f"| {row['metric']} | {row['plain']:.2f} MB | {row['bytecode_only']:.2f} MB | "
                f"{row['peer']:.2f} MB | {row['plain_to_peer']:.2f}x | "
                f"{row['bytecode_only_to_peer']:.2f}x |"
            )
        else:
            lines.append(
                f"| {row['metric']} | {row['plain']:.3f} s | {row['bytecode_only']:.3f} s | | | |"
            )
    verdict = "met" if goal["met"] else "NOT met"
    lines += [
        "",
        f"Goal: image ≤ {goal['image_size_ratio']}x the docker-built image with bytecode_only: "
        f"{goal['measured']:.3f}x — {verdict}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--start-rounds", type=int, default=11, help="cold starts of each")
    args = parser.parse_args()
    if args.start_rounds < 1:
        parser.error("--start-rounds must be at least 1")
    with exclusive():
        with workspace() as (work, created):
            data = measure(args.start_rounds, work, created)
        result = results(data, args.start_rounds)
    out = REPO / "bench" / "results"
    (out / "bytecode.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (out / "bytecode.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
