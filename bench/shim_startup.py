"""The shims' own start-up cost: what mcp-deploy adds to a Python server's cold start, all but
importing the app and its dependencies, side by side with a peer in the same run.

The example (examples/toolbox) is built into its Lambda zip (`mcp-deploy build`) and unpacked;
each variant runs in a fresh process of the local Lambda runtime's Python (awslambdaric and
boto3 installed, as on Lambda), with the task root first on sys.path, and times its work with
perf_counter (interpreter start-up, equal for all, excluded). Rounds interleave the variants.
- `app`: `import toolbox.app` (the app and its dependencies: the baseline of every other);
- `lambda shim`: `import mcp_deploy_lambda` (the handler module: runtime config, the two
  secrets read with `mcp_deploy_secrets` from a loopback Secrets Manager stand-in, the gate,
  the app imported, its lifespan entered once);
- `lambda shim, boto3 read` (before issue 15): the same, the secrets read as the shim read
  them until then (`import boto3`, a client, one GetSecretValue per secret);
- `peer: pip + Mangum`: `from mangum import Mangum; import toolbox.app; Mangum(app)`, the
  handler of a plain `pip install -t` + Mangum zip (secrets as plain environment variables);
- `cloudrun shim`: `import mcp_deploy_serve` + its app and gate set up as `main()` does (not
  the server itself), against `peer: uvicorn`: `import uvicorn; import toolbox.app`.
Own cost = median(variant) - median(app). Also: `python -X importtime` of the Lambda shim, the
modules it imports that the bare app does not, by self time.

Run: `.venv/bin/python bench/shim_startup.py [--rounds N]`; writes
bench/results/shim_startup.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._common import exclusive, machine, workspace  # noqa: E402

NAMES = ("MCP_AUTH_TOKEN", "TOOLBOX_API_KEY")
REGION = "eu-west-1"

TIMED = """import os, sys, time, json
sys.path.insert(0, os.getcwd())
t0 = time.perf_counter()
{body}
print(json.dumps({{"ms": (time.perf_counter() - t0) * 1000}}), flush=True)
os._exit(0)
"""
BODIES = {
    "app": "import toolbox.app",
    "lambda shim": "import mcp_deploy_lambda",
    "lambda shim, boto3 read": """import boto3
client = boto3.client("secretsmanager")
for name, arn in sorted(json.loads(os.environ.pop("MCP_DEPLOY_SECRET_ARNS")).items()):
    os.environ[name] = client.get_secret_value(SecretId=arn)["SecretString"]
import mcp_deploy_lambda""",
    "peer: pip + Mangum": """from mangum import Mangum
import toolbox.app
handler = Mangum(toolbox.app.app)""",
    "cloudrun shim": """import mcp_deploy_serve
from mcp_deploy_gate import Gate, import_app, runtime_config
config = runtime_config()
app = mcp_deploy_serve.GatedApp(import_app(config["entry"]), Gate(config))""",
    "peer: uvicorn": "import uvicorn\nimport toolbox.app",
}
PEERS = {"lambda shim": "peer: pip + Mangum", "cloudrun shim": "peer: uvicorn"}


def progress(message: str) -> None:
    print(f"[shim_startup] {message}", file=sys.stderr, flush=True)


def build_zip(work: Path) -> Path:
    """The example's Lambda zip, unpacked under `work`; the Cloud Run shim laid next to it."""
    import shutil

    project = work / "toolbox"
    shutil.copytree(
        REPO / "examples" / "toolbox",
        project,
        ignore=shutil.ignore_patterns(".mcp-deploy", "__pycache__"),
    )
    mcp_deploy = str(Path(sys.executable).with_name("mcp-deploy"))
    done = subprocess.run(
        [
            mcp_deploy,
            "--spec",
            str(project / "mcp-deploy.toml"),
            "build",
            "--target",
            "lambda",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    path = Path(json.loads(done.stdout)["artifacts"][0]["path"])
    task_root = work / "task"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(task_root)
    shutil.copy(REPO / "targets" / "cloudrun" / "shim" / "mcp_deploy_serve.py", task_root)
    return task_root


def run(python: Path, task_root: Path, env: dict[str, str], body: str, *flags: str) -> Any:
    done = subprocess.run(
        [str(python), *flags, "-c", TIMED.format(body=body)],
        cwd=task_root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{body!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def imported(stderr: str) -> dict[str, int]:
    """{module: self µs} of a `-X importtime` log."""
    found: dict[str, int] = {}
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            own, _, name = line[len("import time:") :].split("|")
            if own.strip().isdigit():
                found[name.strip()] = int(own)
    return found


def measure(rounds: int, work: Path) -> dict[str, Any]:
    from targets.aws_lambda.local_runtime import runtime_python
    from targets.aws_lambda.secrets_local import Credentials, SecretsManagerStub, secret_arn

    progress("building the example's Lambda zip")
    task_root = build_zip(work)
    python = runtime_python("3.11")
    credentials = Credentials.generate()
    arns = {name: secret_arn(REGION, "toolbox", name) for name in NAMES}
    stub = SecretsManagerStub({arns[n]: f"value-of-{n}" for n in NAMES}, credentials).start()
    try:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": stub.endpoint,
            "MCP_DEPLOY_SECRET_ARNS": json.dumps(arns),
            **credentials.environment(),
        }
        plain = {**env, **{name: f"value-of-{name}" for name in NAMES}}
        del plain["MCP_DEPLOY_SECRET_ARNS"]
        envs = {name: env for name in BODIES}
        for name in ("app", "peer: pip + Mangum", "cloudrun shim", "peer: uvicorn"):
            envs[name] = plain
        samples: dict[str, list[float]] = {name: [] for name in BODIES}
        for body_name, body in BODIES.items():  # warm the page cache
            run(python, task_root, envs[body_name], body)
        for number in range(rounds):
            progress(f"round {number + 1}/{rounds}")
            for body_name, body in BODIES.items():
                samples[body_name].append(run(python, task_root, envs[body_name], body)[0]["ms"])
        _, app_log = run(python, task_root, plain, BODIES["app"], "-X", "importtime")
        _, shim_log = run(python, task_root, env, BODIES["lambda shim"], "-X", "importtime")
    finally:
        stub.stop()
    app_modules, shim_modules = imported(app_log), imported(shim_log)
    extra = {m: us for m, us in shim_modules.items() if m not in app_modules}
    return {
        "samples": samples,
        "python": subprocess.run(
            [str(python), "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip(),
        "shim_only_modules": dict(sorted(extra.items(), key=lambda item: -item[1])),
        "boto3_imported_by_shim": any(m.split(".")[0] in ("boto3", "botocore") for m in extra),
    }


def results(rounds: int, data: dict[str, Any]) -> dict[str, Any]:
    medians = {name: round(statistics.median(s), 1) for name, s in data["samples"].items()}
    app = medians["app"]
    own = {name: round(ms - app, 1) for name, ms in medians.items() if name != "app"}
    return {
        "machine": machine(),
        "python": data["python"],
        "rounds": rounds,
        "median_ms": medians,
        "own_ms": own,
        "own_share_of_lambda_shim": round(own["lambda shim"] / medians["lambda shim"], 3),
        "shim_only_modules_us": dict(list(data["shim_only_modules"].items())[:15]),
        "shim_only_modules_total_ms": round(sum(data["shim_only_modules"].values()) / 1000, 1),
        "boto3_imported_by_shim": data["boto3_imported_by_shim"],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Shim start-up cost (bench/shim_startup.py)",
        "",
        f"{result['machine']}; the local Lambda runtime's Python {result['python']}; "
        f"{result['rounds']} rounds, medians; example: examples/toolbox as its Lambda zip lays "
        "it out. Own cost = the variant - `app` (importing the app and its dependencies).",
        "",
        "| variant | median ms | own ms (- app) |",
        "|---|---:|---:|",
    ]
    for name, ms in result["median_ms"].items():
        own = "—" if name == "app" else f"{result['own_ms'][name]:.1f}"
        lines.append(f"| {name} | {ms:.1f} | {own} |")
    modules = ", ".join(
        f"{name} {us / 1000:.1f}" for name, us in result["shim_only_modules_us"].items()
    )
    lines += [
        "",
        f"The Lambda shim's own cost is {result['own_share_of_lambda_shim']:.1%} of its import "
        "(the handler module's cold start without interpreter start-up).",
        "",
        f"`-X importtime`: modules the Lambda shim imports that the bare app does not: "
        f"{result['shim_only_modules_total_ms']:.1f} ms self time in all; the largest (ms): "
        f"{modules}. boto3 imported at cold start: {result['boto3_imported_by_shim']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with exclusive(("bench-local.lock", "bench-build.lock"), progress):
        with workspace("shim-startup", progress) as (work, _cleanup):
            data = measure(args.rounds, work)
        result = results(args.rounds, data)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "shim_startup.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    text = markdown(result)
    (out / "shim_startup.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
