"""Secrets at a Lambda cold start (issue 15, item 1): boto3 against mcp-deploy's SDK-free
client, and moto's server against the Lambda emulation's Secrets Manager stand-in.

1. Cold read, side by side. Each sample is a fresh `python` process (the repo venv's, bytecode
   compiled) that reads N secrets (1 and 3) from a loopback server given by
   AWS_ENDPOINT_URL_SECRETS_MANAGER, with Lambda's environment variables (region, credentials,
   session token), two ways:
   - `boto3`: what the shim does today: `import boto3`, `boto3.client("secretsmanager")`, one
     `get_secret_value` per secret, in turn;
   - `ours`: `import mcp_deploy_secrets` (copied next to the driver and compiled, as it is in the
     zip), `read_secrets(arns)` (in parallel).
   In two contexts: `bare` (nothing imported before the clock starts) and `shim` (the clock
   starts after what the shim imports before it reads secrets: asyncio, mangum,
   mcp_deploy_gate; their cost is the shim's in both cases). Timed inside the process with
   perf_counter: import, client creation, reads; and from outside, the process's wall time.
   Against both servers: the stand-in (targets/aws_lambda/secrets_local.py, in this process)
   and moto's server (its own process). Every sample's answer is checked (a digest of the
   values). The cases run in an order shuffled per round. Reported: medians over rounds, and
   the ratio ours ÷ boto3.
2. The servers' start: moto's server as a subprocess (`python -m moto.server -H 127.0.0.1 -p P`,
   what a local emulation would start per function) from spawn to accepting connections and to
   its first GetSecretValue answer, and its resident memory then; moto's ThreadedMotoServer
   started inside a fresh process (import + start + first answer); the stand-in likewise
   (import + start + first answer).
3. Per-call latency, warm: `ours` (a new connection per read, as at a cold start) and a warm
   boto3 client (keep-alive), against each server, one secret, calls interleaved.
4. Fidelity: the same requests to moto's server and to the stand-in (missing secret, full ARN,
   ARN without its random suffix, name, VersionStage, deleted secret, binary secret, another
   session token), next to what AWS documents; and whether another local process can read the
   values (moto's /moto-api/data.json).

Usage: .venv/bin/python bench/secrets_read.py [--rounds N] [--calls N]
Writes bench/results/secrets.md and .json.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory is first on sys.path, and this file would shadow the
# standard library's `secrets` (which the stand-in imports): take that directory off.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import hashlib
import json
import os
import py_compile
import random
import shutil
import socket
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import astuple
from functools import partial
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import _common  # noqa: E402
from targets.aws_lambda.secrets_local import (  # noqa: E402
    Credentials,
    SecretsManagerStub,
    secret_arn,
)
from targets.aws_lambda.shim import mcp_deploy_secrets as ours  # noqa: E402

PYTHON = REPO / ".venv" / "bin" / "python"
MODULE = REPO / "targets" / "aws_lambda" / "shim" / "mcp_deploy_secrets.py"
REGION = "eu-west-1"
NAMES = ("API_KEY", "DB_PASSWORD", "MCP_AUTH_TOKEN")
VALUES = {name: f"bench-{name.lower()}-{i:04d}" for i, name in enumerate(NAMES)}

SHIM_CONTEXT = "import asyncio, json, os\nfrom mangum import Mangum\nimport mcp_deploy_gate\n"
DRIVER = """{context}import hashlib, json, os, time
arns = json.loads(os.environ["MCP_DEPLOY_SECRET_ARNS"])
t0 = time.perf_counter()
{body}
t3 = time.perf_counter()
digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()
print(json.dumps({{"import": t1 - t0, "client": t2 - t1, "read": t3 - t2, "digest": digest}}))
"""
BODIES = {
    "boto3": """import boto3
t1 = time.perf_counter()
client = boto3.client("secretsmanager")
t2 = time.perf_counter()
values = {}
for n, a in sorted(arns.items()):
    values[n] = client.get_secret_value(SecretId=a)["SecretString"]""",
    "ours": """import mcp_deploy_secrets
t1 = t2 = time.perf_counter()
values = mcp_deploy_secrets.read_secrets(arns)""",
}


def progress(message: str) -> None:
    print(f"[secrets] {message}", file=sys.stderr, flush=True)


def digest(values: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lambda_env(endpoint: str, credentials: Credentials, work: Path) -> dict[str, str]:
    """A clean environment as Lambda gives it (no AWS config files, no metadata service)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    return {
        **base,
        **credentials.environment(),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        "AWS_CONFIG_FILE": str(work / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join([str(work / "zip"), str(REPO / "targets" / "shim")]),
    }


class Moto:
    """moto's server in its own process on 127.0.0.1."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.started = time.perf_counter()
        with log.open("ab") as out:
            command = [str(PYTHON), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
            self.process = subprocess.Popen(command, stdout=out, stderr=out, env=env)

    def wait(self) -> tuple[float, float]:
        """(seconds to accepting connections, seconds to the first GetSecretValue answer)."""
        accepting = 0.0
        while time.perf_counter() - self.started < 60:
            if self.process.poll() is not None:
                raise RuntimeError("moto's server exited")
            try:
                if not accepting:
                    socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                    accepting = time.perf_counter() - self.started
                raw_call(self.endpoint, Credentials("a", "b", "c"), "arn:not-there")
                return accepting, time.perf_counter() - self.started
            except OSError:
                time.sleep(0.005)
        raise RuntimeError("moto's server did not start")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def admin(endpoint: str) -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def raw_call(
    endpoint: str, credentials: Credentials, secret_id: str, **extra: str
) -> tuple[int, str, dict[str, Any]]:
    """One signed GetSecretValue: (status, content type, JSON or XML-parsed fields)."""
    body = json.dumps({"SecretId": secret_id, **extra}).encode()
    fixed = {"Content-Type": ours.CONTENT_TYPE, "X-Amz-Target": ours.TARGET}
    signing = ours.Credentials(*astuple(credentials))
    headers = ours.sign_v4(
        "POST", endpoint, fixed, body, REGION, "secretsmanager", signing, time.time()
    )
    parts = urlsplit(endpoint)
    status, answer, data = ours.exchange(parts, "POST", headers, body, {})
    try:
        fields = json.loads(data)
    except ValueError:
        code, message = ours.aws_error(status, answer, data)
        fields = {"__type": code, "message": message, "(body)": "XML"}
    return status, answer.get("content-type", ""), fields


def cold_sample(
    client: str, context: str, arns: dict[str, str], endpoint: str, env: dict[str, str]
) -> dict[str, float]:
    """One cold read in a fresh process: seconds to import, create the client, read."""
    script = DRIVER.format(context=SHIM_CONTEXT if context == "shim" else "", body=BODIES[client])
    env = {
        **env,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        "MCP_DEPLOY_SECRET_ARNS": json.dumps(arns),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [str(PYTHON), "-c", script], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{client} driver failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result.pop("digest") != digest({name: VALUES[name] for name in arns}):
        raise RuntimeError(f"{client} read other values")
    return {**result, "total": result["import"] + result["client"] + result["read"], "wall": wall}


# Servers started inside a fresh process: the signing client is imported before the clock.
FRESH_SERVER = """import sys, time
sys.path.insert(0, {repo!r})
from targets.aws_lambda.shim import mcp_deploy_secrets as ours
t0 = time.perf_counter()
{start}
started = time.perf_counter()
body = b'{{"SecretId": "arn:aws:secretsmanager:eu-west-1:000000000000:secret:x"}}'
fixed = {{"Content-Type": ours.CONTENT_TYPE, "X-Amz-Target": ours.TARGET}}
creds = ours.Credentials("a", "b", token)
headers = ours.sign_v4("POST", url, fixed, body, "eu-west-1", "secretsmanager", creds, time.time())
status = ours.exchange(ours.urlsplit(url), "POST", headers, body, {{}})[0]
print(started - t0, time.perf_counter() - t0, status)
{stop}
"""
THREADED_MOTO = (
    "from moto.server import ThreadedMotoServer\n"
    "server = ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False)\n"
    "server.start()\nurl, token = 'http://127.0.0.1:{port}', 'c'",
    "server.stop()",
)
STAND_IN = (
    "from targets.aws_lambda.secrets_local import Credentials, SecretsManagerStub\n"
    "credentials = Credentials.generate()\n"
    "arn = 'arn:aws:secretsmanager:eu-west-1:000000000000:secret:x'\n"
    "stub = SecretsManagerStub({{arn: 'v'}}, credentials).start()\n"
    "url, token = stub.endpoint, credentials.session_token",
    "stub.stop()",
)


def fresh_server_start(kind: tuple[str, str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds to started, seconds to the first answer) of a server started in a new process."""
    start, stop = kind
    script = FRESH_SERVER.format(repo=str(REPO), start=start.format(port=free_port()), stop=stop)
    done = subprocess.run(
        [str(PYTHON), "-c", script], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    started, answered, _status = done.stdout.split()
    return float(started), float(answered)


# -- fidelity ------------------------------------------------------------------------------

AWS = {  # what AWS documents (Secrets Manager API reference: GetSecretValue, Common Errors)
    "full ARN": "200 SecretString",
    "ARN without the random suffix": "200 (partial ARNs are matched)",
    "name": "200",
    "missing secret": "400 ResourceNotFoundException",
    "VersionStage AWSPREVIOUS": "200, the previous value",
    "VersionStage unknown": "400 ResourceNotFoundException",
    "secret scheduled for deletion": "400 InvalidRequestException",
    "binary secret": "200 SecretBinary (base64)",
    "another session token": "400 UnrecognizedClientException",
    "content type of answers": "application/x-amz-json-1.1",
}


def describe(answer: tuple[int, str, dict[str, Any]]) -> str:
    status, _, fields = answer
    if status == 200:
        kept = [k for k in ("SecretString", "SecretBinary") if k in fields]
        stages = fields.get("VersionStages")
        return f"{status} {' '.join(kept)}" + (f" {stages}" if stages else "")
    text = f"{status} {fields.get('__type', '')}: {fields.get('message', '')}"
    return text + (" (XML body)" if "(body)" in fields else "")


def fidelity(moto: str, stand_in: SecretsManagerStub, creds: Credentials) -> dict[str, Any]:
    client = admin(moto)
    name = f"fidelity/{random.randrange(1 << 30):x}"
    arn = client.create_secret(Name=name, SecretString="first")["ARN"]
    client.put_secret_value(SecretId=arn, SecretString=VALUES["API_KEY"])
    binary = client.create_secret(Name=name + "-bin", SecretBinary=b"\0\1")["ARN"]
    gone = client.create_secret(Name=name + "-gone", SecretString="x")["ARN"]
    client.delete_secret(SecretId=gone, RecoveryWindowInDays=7)
    std = secret_arn(REGION, "toolbox", "API_KEY")
    other = Credentials("a", "b", "another-token")
    dummy = Credentials("testing", "testing", "testing")
    probes: dict[str, tuple[Any, Any]] = {
        "full ARN": ((arn, {}, dummy), (std, {}, creds)),
        "ARN without the random suffix": ((arn[:-7], {}, dummy), (std[:-6], {}, creds)),
        "name": ((name, {}, dummy), ("toolbox/API_KEY", {}, creds)),
        "missing secret": ((arn + "x", {}, dummy), (std + "x", {}, creds)),
        "VersionStage AWSPREVIOUS": (
            (arn, {"VersionStage": "AWSPREVIOUS"}, dummy),
            (std, {"VersionStage": "AWSPREVIOUS"}, creds),
        ),
        "VersionStage unknown": (
            (arn, {"VersionStage": "NOPE"}, dummy),
            (std, {"VersionStage": "NOPE"}, creds),
        ),
        "secret scheduled for deletion": ((gone, {}, dummy), None),
        "binary secret": ((binary, {}, dummy), None),
        "another session token": ((arn, {}, other), (std, {}, other)),
    }
    rows: dict[str, dict[str, str]] = {}
    types: dict[str, set[str]] = {"moto": set(), "stand-in": set()}
    for probe, (at_moto, at_stand_in) in probes.items():
        row = {"aws": AWS[probe]}
        for label, endpoint, args in (
            ("moto", moto, at_moto),
            ("stand-in", stand_in.endpoint, at_stand_in),
        ):
            if args is None:
                row[label] = "(cannot hold one)"
                continue
            secret_id, extra, who = args
            answer = raw_call(endpoint, who, secret_id, **extra)
            types[label].add(answer[1])
            row[label] = describe(answer)
        rows[probe] = row
    rows["content type of answers"] = {
        "aws": AWS["content type of answers"],
        "moto": ", ".join(sorted(types["moto"])),
        "stand-in": ", ".join(sorted(types["stand-in"])),
    }
    with urllib.request.urlopen(f"{moto}/moto-api/data.json", timeout=10) as answer:
        dump = answer.read().decode()
    return {"rows": rows, "moto_dump_has_value": VALUES["API_KEY"] in dump}


# -- the run ---------------------------------------------------------------------------------


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def p90_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))] * 1000, 3)


def measure(rounds: int, calls: int, work: Path) -> dict[str, Any]:
    (work / "zip").mkdir()
    for source in (MODULE, MODULE.with_name("mcp_deploy_secrets_http.py")):
        module = work / "zip" / source.name
        shutil.copy(source, module)
        py_compile.compile(
            str(module),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    creds = Credentials.generate()
    stand_in_arns = {n: secret_arn(REGION, "toolbox", n) for n in NAMES}
    stand_in = SecretsManagerStub(
        {stand_in_arns[n]: VALUES[n] for n in NAMES}, creds, peer=None
    ).start()
    moto = Moto(work / "moto.log")
    moto.wait()
    client = admin(moto.endpoint)
    prefix = f"bench/{random.randrange(1 << 30):x}"
    moto_arns = {
        n: client.create_secret(Name=f"{prefix}/{n}", SecretString=VALUES[n])["ARN"] for n in NAMES
    }
    env = lambda_env("", creds, work)
    servers = {"stand-in": (stand_in.endpoint, stand_in_arns), "moto": (moto.endpoint, moto_arns)}
    cold: dict[str, list[dict[str, float]]] = {}
    cases = [
        (c, ctx, srv, n)
        for c in ("boto3", "ours")
        for ctx in ("bare", "shim")
        for srv in servers
        for n in (1, 3)
    ]
    try:
        for case in cases:  # one untimed sample each: page cache, pyc
            cold_sample(
                case[0],
                case[1],
                dict(list(servers[case[2]][1].items())[: case[3]]),
                servers[case[2]][0],
                env,
            )
        for number in range(rounds):
            progress(f"cold round {number + 1}/{rounds}")
            random.shuffle(cases)
            for c, ctx, srv, n in cases:
                endpoint, arns = servers[srv]
                sample = cold_sample(c, ctx, dict(list(arns.items())[:n]), endpoint, env)
                cold.setdefault(f"{c}|{ctx}|{srv}|{n}", []).append(sample)
        progress("per-call latency")
        per_call: dict[str, list[float]] = {}
        boto3_clients = {srv: boto3_client(url, creds) for srv, (url, _) in servers.items()}
        readers: dict[str, Callable[[], object]] = {}
        for srv, (endpoint, arns) in servers.items():
            one = {"API_KEY": arns["API_KEY"]}
            environ = {**env, "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint}
            readers[f"ours|{srv}"] = partial(ours.read_secrets, one, environ)
            readers[f"boto3|{srv}"] = partial(
                boto3_clients[srv].get_secret_value, SecretId=arns["API_KEY"]
            )
        order = [key for key in readers for _ in range(calls)]
        for key in readers:
            for _ in range(20):
                readers[key]()
        random.shuffle(order)
        for key in order:
            began = time.perf_counter()
            readers[key]()
            per_call.setdefault(key, []).append(time.perf_counter() - began)
        progress("fidelity probes")
        found = fidelity(moto.endpoint, stand_in, creds)
    finally:
        stand_in.stop()
        moto.stop()
    progress("server start")
    starts: dict[str, list[tuple[float, float]]] = {}
    rss: list[float] = []
    plain = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for _ in range(max(3, rounds // 2)):
        server = Moto(work / "moto-start.log")
        try:
            starts.setdefault("moto_server", []).append(server.wait())
            rss.append(server.rss_mib())
        finally:
            server.stop()
        starts.setdefault("threaded_moto", []).append(fresh_server_start(THREADED_MOTO, plain))
        starts.setdefault("stand_in", []).append(fresh_server_start(STAND_IN, plain))
    return {"cold": cold, "per_call": per_call, "starts": starts, "rss": rss, "fidelity": found}


def boto3_client(endpoint: str, credentials: Credentials) -> Any:
    import boto3

    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
    )


def results(args: argparse.Namespace, data: dict[str, Any], seconds: float) -> dict[str, Any]:
    import importlib.metadata

    cold = {}
    for key, samples in sorted(data["cold"].items()):
        cold[key] = {part: median_ms([s[part] for s in samples]) for part in samples[0]}
    ratios = {}
    for key, figures in cold.items():
        client, rest = key.split("|", 1)
        if client == "ours":
            boto = cold[f"boto3|{rest}"]
            ratios[rest] = {
                "total": round(figures["total"] / boto["total"], 3),
                "wall": round(figures["wall"] / boto["wall"], 3),
                "saved_ms": round(boto["total"] - figures["total"], 1),
            }
    starts = {
        kind: {
            "started_ms": median_ms([a for a, _ in samples]),
            "first_answer_ms": median_ms([b for _, b in samples]),
            "samples": len(samples),
        }
        for kind, samples in data["starts"].items()
    }
    return {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": _common.machine(),
        "python": sys.version.split()[0],
        "versions": {
            name: importlib.metadata.version(name) for name in ("boto3", "botocore", "moto")
        },
        "rounds": args.rounds,
        "calls": args.calls,
        "seconds": round(seconds, 1),
        "load_average": data["load"],
        "cold_ms": cold,
        "ours_vs_boto3": ratios,
        "per_call_ms": {
            key: {"median": median_ms(v), "p90": p90_ms(v)}
            for key, v in sorted(data["per_call"].items())
        },
        "server_start_ms": starts,
        "moto_rss_mib": round(statistics.median(data["rss"]), 1),
        "fidelity": data["fidelity"],
    }


def markdown(r: dict[str, Any]) -> str:
    cold, ratio = r["cold_ms"], r["ours_vs_boto3"]
    v = r["versions"]
    lines = [
        "# Secrets at a Lambda cold start: boto3 vs mcp-deploy's client; moto vs the stand-in",
        "",
        f"Measured {r['measured_at']} by `bench/secrets_read.py` on {r['machine']}, Python "
        f"{r['python']}, boto3 {v['boto3']} (botocore {v['botocore']}), moto {v['moto']}: "
        f"{r['rounds']} rounds of cold reads, {r['calls']} warm calls per peer; run time "
        f"{r['seconds']} s; 1-minute load average {r['load_average'][0]} at the start, "
        f"{r['load_average'][1]} at the end (the machine is shared; cases are shuffled per "
        "round so noise spreads over all of them).",
        "",
        "## 1. Cold read in a fresh process (medians, ms)",
        "",
        "`boto3`: `import boto3` + `boto3.client('secretsmanager')` + one `get_secret_value` per "
        "secret in turn (the shim today). `ours`: `import mcp_deploy_secrets` + "
        "`read_secrets(arns)` (parallel). Context `bare`: nothing imported before; `shim`: after "
        "what the shim imports before reading secrets (asyncio, mangum, mcp_deploy_gate). "
        "Wall: the whole process from outside (interpreter start-up included, and the "
        "context's imports).",
        "",
        "| context | server | secrets | boto3 import | boto3 client | boto3 reads "
        "| **boto3 total** | ours import | ours reads | **ours total** | ours ÷ boto3 | saved "
        "| wall boto3 | wall ours |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for rest, figures in ratio.items():
        ctx, srv, n = rest.split("|")
        b, o = cold[f"boto3|{rest}"], cold[f"ours|{rest}"]
        lines.append(
            f"| {ctx} | {srv} | {n} | {b['import']} | {b['client']} | {b['read']} | "
            f"**{b['total']}** | {o['import']} | {o['read']} | **{o['total']}** | "
            f"{figures['total']}x | {figures['saved_ms']} | {b['wall']} | {o['wall']} |"
        )
    s = r["server_start_ms"]
    calls = r["per_call_ms"]
    lines += [
        "",
        "## 2. Starting the server",
        "",
        "| server | started (ms) | first GetSecretValue answered (ms) | starts |",
        "| --- | ---: | ---: | ---: |",
        f"| moto's server, `python -m moto.server` subprocess (accepting) | "
        f"{s['moto_server']['started_ms']} | {s['moto_server']['first_answer_ms']} | "
        f"{s['moto_server']['samples']} |",
        f"| moto's ThreadedMotoServer in a fresh process (import + start) | "
        f"{s['threaded_moto']['started_ms']} | {s['threaded_moto']['first_answer_ms']} | "
        f"{s['threaded_moto']['samples']} |",
        f"| the stand-in in a fresh process (import + start) | "
        f"{s['stand_in']['started_ms']} | {s['stand_in']['first_answer_ms']} | "
        f"{s['stand_in']['samples']} |",
        "",
        f"moto's server holds {r['moto_rss_mib']} MiB resident once started (median); the "
        "stand-in is a thread of the emulator (no process of its own).",
        "",
        "## 3. One GetSecretValue, warm (ms)",
        "",
        "| client | server | median | p90 |",
        "| --- | --- | ---: | ---: |",
    ]
    for key, figures in calls.items():
        client, srv = key.split("|")
        how = "new connection per read" if client == "ours" else "warm client, keep-alive"
        lines.append(f"| {client} ({how}) | {srv} | {figures['median']} | {figures['p90']} |")
    f = r["fidelity"]
    lines += [
        "",
        "## 4. Fidelity: the same requests (signed by our client)",
        "",
        "| request | AWS (documented) | moto's server | the stand-in |",
        "| --- | --- | --- | --- |",
    ]
    for probe, row in f["rows"].items():
        lines.append(f"| {probe} | {row['aws']} | {row['moto']} | {row['stand-in']} |")
    leak = "yes" if f["moto_dump_has_value"] else "no"
    lines += [
        "",
        f"Another local process reads every stored value from moto's `GET /moto-api/data.json`"
        f" (no credentials): {leak}.",
        "",
        EVALUATION,
    ]
    return "\n".join(lines) + "\n"


EVALUATION = """## Evaluation: could moto's server replace the stand-in in Lambda-local?

Not as it is; keep `targets/aws_lambda/secrets_local.py`, and keep moto where it is (the tests'
real Secrets Manager).

- **Start and footprint.** moto's server is a second Python process per emulated function
  that needs the figures of table 2 before it answers, and the memory above; the stand-in is
  a thread of the emulator that answers within milliseconds. Lambda-local's cold start is
  measured against a goal; moto would add its start-up to it (or a pre-started shared server,
  which is state shared between deployments).
- **Isolation.** The stand-in admits only the runtime process's connections (peer check per
  connection, `peers.RuntimePeer`) and checks the run's session token, so another local
  process cannot read the values. moto's server accepts anyone on loopback, routes by the
  Authorization header's credential scope without checking it (unless its IAM mode is on), and
  serves every stored value, plus write access to the whole state, on unauthenticated
  `/moto-api/` endpoints: a step back from principle 2 (values only where they must be).
- **Fidelity.** moto is closer to AWS where a stand-in has no reason to go (name and
  partial-ARN lookup, VersionStage, deleted secrets, SecretBinary), but differs where the
  shim's read is concerned: errors come with HTTP 404 (not 400) and `text/html` / `application/json`
  content types; with its IAM checks on, auth failures come in the query protocol's XML and
  codes (SignatureDoesNotMatch, InvalidClientTokenId, AccessDenied; HTTP 403) instead of
  JSON InvalidSignatureException / UnrecognizedClientException / AccessDeniedException
  (HTTP 400); it matches IAM policies on GetSecretValue against Resource `*` only and fails
  (HTTP 500) on the `-??????` suffix AWS documents for partial-ARN policies. Its IAM mode is
  global and switched on by request count or an unauthenticated `/moto-api/reset-auth` call.
- **What the stand-in lacks** (none of it used by the shim, which reads SecretString by full
  ARN): lookup by name or partial ARN, VersionStage/VersionId (ignored: it answers the one
  value it holds), SecretBinary, deleted secrets; and it refuses another session token with
  HTTP 403 where AWS answers 400 (same code and message). Worth fixing if the stand-in is ever
  asked more than the shim asks; none of it is a reason to trade its isolation for moto.

So: the shim's protocol is proven against moto (tests/integration/test_secrets_client.py,
including signatures and session tokens checked by moto's IAM mode) and byte for byte against
botocore's signer (tests/unit/test_secrets_sigv4.py); Lambda-local keeps its stand-in.
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7, help="cold rounds (default 7)")
    parser.add_argument("--calls", type=int, default=200, help="warm calls per peer (default 200)")
    args = parser.parse_args()
    if args.rounds < 1 or args.calls < 10:
        parser.error("--rounds must be at least 1 and --calls at least 10")
    began, load = time.monotonic(), [round(os.getloadavg()[0], 2)]
    locks = ("bench-local.lock", "bench-build.lock")
    with (
        _common.exclusive(locks, progress),
        _common.workspace("secrets", progress) as (work, _cleanup),
    ):
        data = measure(args.rounds, args.calls, work)
    load.append(round(os.getloadavg()[0], 2))
    result = results(args, {**data, "load": load}, time.monotonic() - began)
    out = REPO / "bench" / "results"
    (out / "secrets.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    text = markdown(result)
    (out / "secrets.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
