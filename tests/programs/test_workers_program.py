"""The Workers program under Pulumi's mock runtime: a Worker, one version holding the bundle's
modules and the bindings, a deployment; refusals; names within Cloudflare's limits; no leaks.

The example spec has no [targets.workers] (its `mcp` cannot be built for Workers), so the
request is the toolbox example's real staging request made for target `workers`: its config,
secrets and auth, with `WorkersOptions` and a small real bundle laid out as
`targets.workers.package` lays it out.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc

from orchestrator.artifacts import Artifact
from orchestrator.deploy.flow import request_for
from orchestrator.deploy.request import ArtifactRef, DeploymentRequest
from orchestrator.environments import resolve
from orchestrator.errors import OperationError
from orchestrator.pulumi.mock_outputs import CLOUDFLARE_SUBDOMAIN
from orchestrator.pulumi.offline import plain_parts, secret_parts
from orchestrator.spec.loader import load_spec
from stacks import program_for, program_names
from targets.workers import WorkersOptions
from tests.conftest import EXAMPLE_SPEC
from tests.programs.mocks import Run, run

# the mock runtime and pulumi_cloudflare emit DeprecationWarnings
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CANARY = "canary-2c8f5a1e-do-not-leak"
SECRET_VALUES = {"MCP_AUTH_TOKEN": f"{CANARY}-token", "TOOLBOX_API_KEY": f"{CANARY}-key"}
ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
VERSION = "cloudflare:index/workerVersion:WorkerVersion"
PYTHON, DATA = "text/x-python", "application/octet-stream"
MANIFEST = {"format": 1, "main": "src/entry.py", "entrypoint": "Default"}
BUNDLE = {
    "wrangler.toml": b'main = "src/entry.py"\n',
    "src/entry.py": b"from workers import WorkerEntrypoint\n",
    "src/mcp_deploy_runtime.py": b'CONFIG_JSON = "{}"\n',
    "src/app.py": b"app = None\n",
    "src/toolbox/__init__.py": b"",
    "src/toolbox/greeting.txt": b"Hello\n",
    "src/toolbox/tools.json": b"{}\n",
    "python_modules/pkg/__init__.py": b"VALUE = 1\n",
    "python_modules/pkg/__pycache__/__init__.cpython-313.pyc": b"\x00",
}
# what wrangler uploads for that bundle: name -> (content type, file in the bundle)
MODULES = {
    "entry.py": (PYTHON, "src/entry.py"),
    "app.py": (PYTHON, "src/app.py"),
    "mcp_deploy_runtime.py": (PYTHON, "src/mcp_deploy_runtime.py"),
    "python_modules/pkg/__init__.py": (DATA, "python_modules/pkg/__init__.py"),
    "toolbox/__init__.py": (PYTHON, "src/toolbox/__init__.py"),
    "toolbox/greeting.txt": ("text/plain", "src/toolbox/greeting.txt"),
    "toolbox/tools.json": (DATA, "src/toolbox/tools.json"),
}


def bundle(tmp_path: Path, files: dict[str, bytes] | None = None, **built: Any) -> Path:
    """A Workers bundle zip; `built` overrides the manifest's compatibility settings."""
    manifest = {
        **MANIFEST,
        "compatibility_date": "2025-09-01",
        "compatibility_flags": ["python_workers"],
        **built,
    }
    path = tmp_path / "workers-bundle.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (BUNDLE if files is None else files).items():
            archive.writestr(name, data)
        archive.writestr("mcp-deploy-workers.json", json.dumps(manifest))
    return path


def example_request(path: Path, **options: Any) -> DeploymentRequest:
    """The example's staging request, for target workers and the bundle at `path`."""
    loaded = load_spec(EXAMPLE_SPEC)
    unused = Artifact("lambda-zip", "lambda", "sha256:" + "0" * 64, 0, "x", Path("/nowhere"))
    staging = request_for(loaded, resolve(loaded, "staging", "lambda"), unused)
    data = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return dataclasses.replace(
        staging,
        target="workers",
        artifact=ArtifactRef("workers-bundle", "workers", digest, len(data)),
        options=WorkersOptions(account_id=ACCOUNT_ID, **options).model_dump(mode="json"),
    )


def workers_program() -> Any:
    """`stacks.workers`, imported with the program (it imports pulumi_cloudflare)."""
    program_for("workers")
    return sys.modules["stacks.workers"]


def deploy(request: DeploymentRequest, path: Path, values: dict[str, str] | None = None) -> Run:
    program = program_for("workers")
    chosen = SECRET_VALUES if values is None else values
    return run(lambda: program(request, chosen, artifact_path=str(path)))


def bindings_of(result: Run) -> list[dict[str, Any]]:
    """The version's bindings, from under their secret marker when there is one."""
    value = result.one("WorkerVersion").inputs["bindings"]
    found: list[dict[str, Any]] = (
        rpc.unwrap_rpc_secret(value) if rpc.is_rpc_secret(value) else value
    )
    return found


def test_staging_declares_a_worker_its_version_and_a_deployment(tmp_path: Path) -> None:
    path = bundle(tmp_path)
    request = example_request(path)
    result = deploy(request, path)

    assert sorted(r.type for r in result.resources) == sorted(
        [
            "pulumi:providers:cloudflare",
            "cloudflare:index/worker:Worker",
            VERSION,
            "cloudflare:index/workersDeployment:WorkersDeployment",
        ]
    )
    # one explicit provider, no token in it (it reads CLOUDFLARE_API_TOKEN), on every resource
    provider = result.one("cloudflare")
    assert provider.inputs == {}
    for resource in result.resources:
        if resource is not provider:
            assert resource.provider is not None
            urn, _, _id = resource.provider.rpartition("::")
            assert urn.endswith(f"pulumi:providers:cloudflare::{provider.name}"), resource.name

    worker = result.one("Worker").inputs
    assert worker == {
        "accountId": ACCOUNT_ID,
        "name": "toolbox-staging",
        "tags": ["mcp-deploy-server=toolbox", "mcp-deploy-environment=staging"],
        "subdomain": {"enabled": True, "previewsEnabled": False},
        "observability": {"enabled": True},
    }

    version = result.one("WorkerVersion").inputs
    assert version["accountId"] == ACCOUNT_ID
    assert version["workerId"] == "toolbox-staging-worker-id"
    assert version["mainModule"] == "entry.py"
    assert version["compatibilityDate"] == "2025-09-01"
    assert version["compatibilityFlags"] == ["python_workers"]
    assert "limits" not in version
    assert version["annotations"] == {
        "workersTag": request.artifact.digest,
        "workersMessage": "mcp-deploy toolbox staging",
    }
    # named and typed as wrangler uploads a pywrangler project; the entry first; no
    # wrangler.toml, manifest or bytecode
    modules = version["modules"]
    assert modules[0]["name"] == "entry.py"
    assert {m["name"]: m["contentType"] for m in modules} == {
        name: content_type for name, (content_type, _) in MODULES.items()
    }
    assert [m["name"] for m in modules[1:]] == sorted(set(MODULES) - {"entry.py"})
    for module in modules:
        _, source = MODULES[module["name"]]
        assert base64.b64decode(module["contentBase64"]) == BUNDLE[source]

    deployment = result.one("WorkersDeployment").inputs
    assert deployment == {
        "accountId": ACCOUNT_ID,
        "scriptName": "toolbox-staging",
        "strategy": "percentage",
        "versions": [{"percentage": 100, "versionId": "toolbox-staging-version-id"}],
        "annotations": {"workersMessage": "mcp-deploy toolbox staging"},
    }

    assert result.outputs == {
        "url": f"https://toolbox-staging.{CLOUDFLARE_SUBDOMAIN}.workers.dev/mcp",
        "script": "toolbox-staging",
        "version_id": "toolbox-staging-version-id",
        "deployment_id": "toolbox-staging-deployment-id",
    }
    assert result.secret_outputs == set()


def test_config_is_plain_text_and_secrets_are_secret_text(tmp_path: Path) -> None:
    path = bundle(tmp_path)
    result = deploy(example_request(path), path)

    assert bindings_of(result) == [
        {"name": "GREETING", "type": "plain_text", "text": "Hello from staging"},
        {"name": "LOG_LEVEL", "type": "plain_text", "text": "debug"},
        {
            "name": "MCP_DEPLOY_ENV_NAMES",
            "type": "plain_text",
            "text": json.dumps(["GREETING", "LOG_LEVEL"]),
        },
        {"name": "MCP_AUTH_TOKEN", "type": "secret_text", "text": SECRET_VALUES["MCP_AUTH_TOKEN"]},
        {
            "name": "TOOLBOX_API_KEY",
            "type": "secret_text",
            "text": SECRET_VALUES["TOOLBOX_API_KEY"],
        },
    ]
    # Pulumi marks a whole input secret when any part of it is: with secret bindings, the
    # plain ones are under the same marker (a documented limitation) ...
    assert rpc.is_rpc_secret(result.one("WorkerVersion").inputs["bindings"])


def test_without_secrets_the_bindings_are_plain(tmp_path: Path) -> None:
    # ... and the marker comes from the secrets alone
    path = bundle(tmp_path)
    request = dataclasses.replace(
        example_request(path), secrets={}, auth={"mode": "none", "acknowledge_public": True}
    )
    result = deploy(request, path, values={})

    bindings = result.one("WorkerVersion").inputs["bindings"]
    assert not rpc.is_rpc_secret(bindings)
    assert [b["type"] for b in bindings] == ["plain_text"] * 3
    assert list(secret_parts(result.one("WorkerVersion").inputs)) == []


def test_cpu_ms_becomes_the_version_limit(tmp_path: Path) -> None:
    path = bundle(tmp_path)
    result = deploy(example_request(path, cpu_ms=50), path)
    assert result.one("WorkerVersion").inputs["limits"] == {"cpuMs": 50}


def test_secret_values_never_reach_a_plain_input_or_output(tmp_path: Path) -> None:
    """Canary leak detector, adapted to Workers: a secret binding makes the version's whole
    `bindings` list secret (see the module doc of stacks.workers), so the secret part is the
    list, not each value, and `mocks.assert_no_leak`'s one-part-per-value control does not fit.
    What holds: no canary outside a secret marker anywhere, the only secret input is the
    version's `bindings`, each value is there as a `secret_text`, and neither the outputs nor
    the request hold a canary."""
    path = bundle(tmp_path)
    request = example_request(path)
    result = deploy(request, path)

    leaks = [
        (r.type, r.name)
        for r in result.resources
        if any(CANARY in str(part) for part in plain_parts(r.inputs))
    ]
    assert leaks == []
    secret_inputs = [
        (r.type, key)
        for r in result.resources
        for key, value in r.inputs.items()
        if list(secret_parts(value))
    ]
    assert secret_inputs == [(VERSION, "bindings")]
    secret_text = {b["name"]: b["text"] for b in bindings_of(result) if b["type"] == "secret_text"}
    assert secret_text == SECRET_VALUES
    assert CANARY not in json.dumps(result.outputs)
    assert CANARY not in json.dumps(request.to_dict())


def test_the_bundle_must_be_the_requested_artifact(tmp_path: Path) -> None:
    path = bundle(tmp_path)
    request = example_request(path)
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(OperationError, match="is not the requested artifact"):
        deploy(request, path)


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("MAX_COMPRESSED", r"at most 200 bytes compressed \(3 MB on the Free plan\)"),
        ("MAX_UNCOMPRESSED", r"at most 200 bytes uncompressed"),
    ],
)
def test_bundles_over_the_size_limits_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, message: str
) -> None:
    files = {**BUNDLE, "python_modules/pkg/big.py": b"x" * 100_000}  # deflates to ~100 bytes
    path = bundle(tmp_path, files)
    request = example_request(path)
    assert path.stat().st_size > 200
    monkeypatch.setattr(workers_program(), limit, 200)
    with pytest.raises(OperationError, match=message):
        deploy(request, path)


def test_the_real_limits_are_cloudflares() -> None:
    module = workers_program()
    assert module.MAX_COMPRESSED == 10 * 2**20
    assert module.MAX_COMPRESSED_FREE == 3 * 2**20
    assert module.MAX_UNCOMPRESSED == 64 * 2**20


def test_a_request_without_account_id_is_refused(tmp_path: Path) -> None:
    path = bundle(tmp_path)
    request = example_request(path)
    request = dataclasses.replace(request, options={**request.options, "account_id": None})
    with pytest.raises(OperationError, match="no Cloudflare account id") as raised:
        deploy(request, path)
    assert "targets.workers.account_id" in str(raised.value.hint)


@pytest.mark.parametrize(
    "ref",
    [
        "aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:toolbox-api-key",
        "gcp-sm://projects/acme-mcp/secrets/toolbox-key/versions/3",
    ],
)
def test_foreign_cloud_secrets_are_refused(tmp_path: Path, ref: str) -> None:
    path = bundle(tmp_path)
    request = example_request(path)
    request = dataclasses.replace(request, secrets={**request.secrets, "TOOLBOX_API_KEY": ref})
    scheme = ref.split(":")[0]
    with pytest.raises(OperationError, match=f"TOOLBOX_API_KEY: a {scheme} reference cannot"):
        deploy(request, path, {"MCP_AUTH_TOKEN": "x"})


def test_secret_values_must_match_the_declared_sources(tmp_path: Path) -> None:
    path = bundle(tmp_path)
    with pytest.raises(OperationError, match="missing: TOOLBOX_API_KEY; not declared as"):
        deploy(example_request(path), path, {"MCP_AUTH_TOKEN": "x", "OTHER": "y"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"routes": ["mcp.example.com/*"]}, "routes is not supported yet: .* zone id"),
        ({"workers_dev": False}, "workers_dev = false leaves the Worker without any address"),
    ],
)
def test_unreachable_or_routed_workers_are_refused(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    path = bundle(tmp_path)
    with pytest.raises(OperationError, match=message):
        deploy(example_request(path, **options), path)


def test_a_bundle_built_for_other_compatibility_settings_is_refused(tmp_path: Path) -> None:
    path = bundle(tmp_path, compatibility_flags=["python_workers", "python_workers_20250116"])
    with pytest.raises(OperationError, match="bundle was built for compatibility date"):
        deploy(example_request(path), path)


def test_a_zip_that_is_not_a_workers_bundle_is_refused(tmp_path: Path) -> None:
    files = {k: v for k, v in BUNDLE.items() if k != "src/entry.py"}
    path = bundle(tmp_path, files)
    with pytest.raises(OperationError, match="is not a Workers bundle"):
        deploy(example_request(path), path)


def test_longest_names_fit_cloudflare_limits(tmp_path: Path) -> None:
    path = bundle(tmp_path)
    server, environment = "s" * 31 + "1", "e" * 15 + "2"  # the spec's maxima: 32 and 16
    request = dataclasses.replace(example_request(path), server=server, environment=environment)
    result = deploy(request, path)

    name = f"{server}-{environment}"
    assert result.one("Worker").inputs["name"] == name and len(name) == 49
    assert result.outputs["url"] == f"https://{name}.{CLOUDFLARE_SUBDOMAIN}.workers.dev/mcp"


def test_script_names_are_valid_stable_and_distinct() -> None:
    script_name = workers_program().script_name
    assert script_name("toolbox", "staging") == "toolbox-staging"
    assert script_name("Tool_Box", "Prod") == "tool-box-prod"
    long_a, long_b = script_name("a" * 70, "x"), script_name("a" * 70, "y")
    for name in (long_a, long_b):
        assert len(name) <= 63
        assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name)
    digest = hashlib.sha256(("a" * 70 + "-x").encode()).hexdigest()[:8]
    assert long_a == "a" * 54 + "-" + digest
    assert long_a != long_b
    assert script_name("a" * 70, "x") == long_a


def test_workers_is_a_registered_program() -> None:
    assert "workers" in program_names()
    assert program_for("workers") is workers_program().program


def test_iam_auth_and_the_shims_binding_name_are_refused(tmp_path: Path) -> None:
    path = bundle(tmp_path)
    request = example_request(path)
    with pytest.raises(OperationError, match="Workers has no IAM auth"):
        deploy(dataclasses.replace(request, auth={"mode": "iam"}), path)
    taken = dataclasses.replace(request, config={**request.config, "MCP_DEPLOY_ENV_NAMES": "[]"})
    with pytest.raises(OperationError, match="MCP_DEPLOY_ENV_NAMES is reserved"):
        deploy(taken, path)
