"""A fleet directory: which spec files count, the matrix (text, --json, --github, filters),
`status DIR` and `plan DIR --offline` over three specs, and a broken spec among good ones."""

from __future__ import annotations

import json
import platform
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.fleet import find_specs, worst_exit
from tests.conftest import CliResult

Run = Callable[..., CliResult]

ALPHA = """\
[server]
name = "alpha"
entry = "demo.app:app"
python = "3.11"

[secrets.MCP_AUTH_TOKEN]

[targets.lambda]
region = "eu-west-1"

[environments.staging]
secrets.MCP_AUTH_TOKEN = "env:ALPHA_STAGING_TOKEN"

[environments.prod]
promote_from = "staging"
secrets.MCP_AUTH_TOKEN = "env:ALPHA_PROD_TOKEN"
"""

# cloudrun only in prod's own layer: prod deploys to both, the others to lambda only; built
# for this machine and with nothing to read, its local plan can succeed
BETA = f"""\
[server]
name = "beta"
entry = "demo.app:app"
python = "3.11"

[auth]
mode = "none"
acknowledge_public = true

[targets.lambda]
region = "us-east-1"
arch = "{"arm64" if platform.machine() in ("arm64", "aarch64") else "x86_64"}"

[environments.staging]

[environments.prod]
promote_from = "staging"
targets.cloudrun.region = "europe-west1"
targets.cloudrun.project = "acme-mcp"
targets.cloudrun.registry = "europe-west1-docker.pkg.dev/acme-mcp/mcp"
"""

GAMMA = """\
[project]
name = "gamma"
version = "0.1.0"

[tool.mcp-deploy.server]
name = "gamma"
entry = "demo.app:app"
python = "3.11"

[tool.mcp-deploy.secrets.MCP_AUTH_TOKEN]

[tool.mcp-deploy.targets.lambda]
arch = "x86_64"

[tool.mcp-deploy.environments.ci]
kind = "local"
"""

EXPECTED = [
    ("alpha/mcp-deploy.toml", "alpha", "lambda", "local", "local", None),
    ("alpha/mcp-deploy.toml", "alpha", "lambda", "staging", "pulumi", None),
    ("alpha/mcp-deploy.toml", "alpha", "lambda", "prod", "pulumi", "staging"),
    ("services/beta/mcp-deploy.toml", "beta", "lambda", "local", "local", None),
    ("services/beta/mcp-deploy.toml", "beta", "lambda", "staging", "pulumi", None),
    ("services/beta/mcp-deploy.toml", "beta", "cloudrun", "prod", "pulumi", "staging"),
    ("services/beta/mcp-deploy.toml", "beta", "lambda", "prod", "pulumi", "staging"),
    ("services/gamma/pyproject.toml", "gamma", "lambda", "local", "local", None),
    ("services/gamma/pyproject.toml", "gamma", "lambda", "ci", "local", None),
]
FIELDS = ("spec", "server", "target", "environment", "kind", "promote_from")

TEXT = """\
alpha/mcp-deploy.toml          alpha  lambda    local    local
alpha/mcp-deploy.toml          alpha  lambda    staging  pulumi
alpha/mcp-deploy.toml          alpha  lambda    prod     pulumi  from staging
services/beta/mcp-deploy.toml  beta   lambda    local    local
services/beta/mcp-deploy.toml  beta   lambda    staging  pulumi
services/beta/mcp-deploy.toml  beta   cloudrun  prod     pulumi  from staging
services/beta/mcp-deploy.toml  beta   lambda    prod     pulumi  from staging
services/gamma/pyproject.toml  gamma  lambda    local    local
services/gamma/pyproject.toml  gamma  lambda    ci       local
"""


def server_project(directory: Path, spec: str, name: str = "mcp-deploy.toml") -> Path:
    """A spec (dedented) in `directory` next to a tiny `demo.app` module; returns the spec."""
    (directory / "demo").mkdir(parents=True, exist_ok=True)
    (directory / "demo" / "__init__.py").write_text("")
    (directory / "demo" / "app.py").write_text("app = None\n")
    path = directory / name
    path.write_text(textwrap.dedent(spec))
    return path


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Pulumi CLI, no passphrase, no spec from the environment, uv offline, own cache."""
    monkeypatch.setenv("MCP_DEPLOY_PULUMI_ROOT", str(tmp_path / "no-pulumi"))
    unset = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "MCP_DEPLOY_SPEC")
    for name in (*unset, "MCP_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("MCP_DEPLOY_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """Three specs (two mcp-deploy.toml in subdirectories, one pyproject.toml), and spec files
    that must not count: in a hidden directory, a .venv, node_modules, behind a symlink that
    leaves the tree, a pyproject.toml beside an mcp-deploy.toml, one without the table."""
    root = tmp_path / "fleet"
    alpha = server_project(root / "alpha", ALPHA)
    server_project(root / "services" / "beta", BETA)
    server_project(root / "services" / "gamma", GAMMA, "pyproject.toml")
    shadowed = GAMMA.replace('name = "gamma"', 'name = "shadowed"')
    (alpha.parent / "pyproject.toml").write_text(shadowed)  # mcp-deploy.toml wins
    for hidden in (".hidden/x", ".venv/lib", "node_modules/pkg", "build", "alpha/dist"):
        server_project(root / hidden, ALPHA.replace('"alpha"', '"hidden"'))
    (root / "tools").mkdir()
    (root / "tools" / "pyproject.toml").write_text('[project]\nname = "tools"\n')
    (root / "tools" / "broken").mkdir()
    (root / "tools" / "broken" / "pyproject.toml").write_text("[project\nname = 'x'\n")
    outside = server_project(tmp_path / "outside", ALPHA.replace('"alpha"', '"outside"'))
    (root / "linked").symlink_to(outside.parent, target_is_directory=True)
    (root / "services" / "linked.toml").symlink_to(outside)  # not a spec name anyway
    return root


def test_find_specs_skips_what_is_not_a_project(fleet: Path) -> None:
    assert [p.relative_to(fleet).as_posix() for p in find_specs(fleet)] == [
        "alpha/mcp-deploy.toml",
        "services/beta/mcp-deploy.toml",
        "services/gamma/pyproject.toml",
    ]


def test_a_symlinked_spec_file_counts_only_inside_the_tree(tmp_path: Path) -> None:
    outside = server_project(tmp_path / "outside", ALPHA)
    root = tmp_path / "root"
    inside = server_project(root / "real", ALPHA)
    (root / "away").mkdir()
    (root / "away" / "mcp-deploy.toml").symlink_to(outside)
    (root / "here").mkdir()
    (root / "here" / "mcp-deploy.toml").symlink_to(inside)
    assert [p.relative_to(root).as_posix() for p in find_specs(root)] == [
        "here/mcp-deploy.toml",
        "real/mcp-deploy.toml",
    ]


def test_matrix_json_and_text(run_cli: Run, fleet: Path) -> None:
    result = run_cli("matrix", str(fleet), "--json")
    assert result.code == 0, result.out + result.err
    data = result.json()
    assert data == {
        "ok": True,
        "entries": [dict(zip(FIELDS, row, strict=True)) for row in EXPECTED],
        "errors": [],
    }
    text = run_cli("matrix", str(fleet))
    assert text.code == 0 and text.err == ""
    assert text.out == TEXT


def test_matrix_defaults_to_the_current_directory(
    run_cli: Run, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(fleet)
    assert run_cli("matrix").out == TEXT


def test_matrix_github_is_one_line_for_from_json(run_cli: Run, fleet: Path) -> None:
    result = run_cli("matrix", str(fleet), "--github", "--kind", "pulumi")
    assert result.code == 0
    assert result.out.count("\n") == 1
    include = json.loads(result.out)["include"]
    assert [(e["server"], e["environment"], e["target"]) for e in include] == [
        ("alpha", "staging", "lambda"),
        ("alpha", "prod", "lambda"),
        ("beta", "staging", "lambda"),
        ("beta", "prod", "cloudrun"),
        ("beta", "prod", "lambda"),
    ]
    assert run_cli("matrix", str(fleet), "--github", "--json").code == 2


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--env", "prod", "--target", "cloudrun"], [EXPECTED[5]]),
        (["--env", "ci"], [EXPECTED[8]]),
        (["--kind", "local"], [EXPECTED[i] for i in (0, 3, 7, 8)]),
        (["--target", "workers"], []),
    ],
)
def test_matrix_filters(
    run_cli: Run, fleet: Path, flags: list[str], expected: list[tuple[str, ...]]
) -> None:
    result = run_cli("matrix", str(fleet), *flags, "--json")
    assert result.code == 0, result.out
    assert [tuple(e.values()) for e in result.json()["entries"]] == expected


def test_matrix_unknown_env_or_target_is_bad_input(run_cli: Run, fleet: Path) -> None:
    env = run_cli("matrix", str(fleet), "--env", "prd")
    assert env.code == 2 and "did you mean 'prod'?" in env.err
    target = run_cli("matrix", str(fleet), "--target", "lamda", "--json")
    assert target.code == 2 and target.json()["errors"][0]["hint"] == "did you mean 'lambda'?"


def test_matrix_of_a_directory_without_specs(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("matrix", str(tmp_path), "--json")
    assert result.code == 2
    assert "no mcp-deploy.toml" in result.json()["errors"][0]["message"]
    assert run_cli("matrix", str(tmp_path / "missing")).code == 2


def test_status_of_a_fleet_with_nothing_deployed(run_cli: Run, fleet: Path) -> None:
    result = run_cli("status", str(fleet), "--json")
    assert result.code == 0, result.out
    assert result.json() == {
        "ok": True,
        "specs": [
            {"spec": spec, "server": server, "ok": True, "exit_code": 0, "deployments": []}
            for spec, server in (
                ("alpha/mcp-deploy.toml", "alpha"),
                ("services/beta/mcp-deploy.toml", "beta"),
                ("services/gamma/pyproject.toml", "gamma"),
            )
        ],
    }
    text = run_cli("status", str(fleet))
    assert text.code == 0
    assert text.out == (
        "==> alpha/mcp-deploy.toml: alpha\nalpha: nothing deployed\n"
        "==> services/beta/mcp-deploy.toml: beta\nbeta: nothing deployed\n"
        "==> services/gamma/pyproject.toml: gamma\ngamma: nothing deployed\n"
    )


def test_status_of_one_environment_skips_specs_without_it(run_cli: Run, fleet: Path) -> None:
    specs = run_cli("status", str(fleet), "--env", "ci", "--json").json()["specs"]
    assert [(s["server"], s.get("skipped"), s["deployments"]) for s in specs] == [
        ("alpha", "no environment 'ci'", []),
        ("beta", "no environment 'ci'", []),
        ("gamma", None, []),
    ]
    # a cloud environment that cannot be read here (no passphrase): bad input, per spec
    cloud = run_cli("status", str(fleet), "--env", "staging", "--json")
    assert cloud.code == 2
    assert [s["exit_code"] for s in cloud.json()["specs"]] == [2, 2, 0]


def test_a_directory_and_spec_flag_do_not_mix(
    run_cli: Run, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = str(fleet / "alpha" / "mcp-deploy.toml")
    assert run_cli("--spec", spec, "status", str(fleet)).code == 2
    assert run_cli("plan", str(fleet), "--set", "memory=1024").code == 2
    monkeypatch.setenv("MCP_DEPLOY_SPEC", spec)  # the variable gives way to DIR
    assert len(run_cli("status", str(fleet), "--json").json()["specs"]) == 3
    assert run_cli("status", "--json").json()["deployments"] == []  # one spec, as before


def test_plan_offline_of_a_fleet(run_cli: Run, fleet: Path) -> None:
    result = run_cli("plan", str(fleet), "--env", "staging", "--offline", "--json")
    assert result.code == 0, result.out + result.err
    data = result.json()
    assert (data["ok"], data["environment"], data["offline"]) == (True, "staging", True)
    specs = {spec["server"]: spec for spec in data["specs"]}
    assert specs["gamma"]["skipped"] == "no environment 'staging'"
    assert specs["gamma"]["plans"] == []
    for server, region in (("alpha", "eu-west-1"), ("beta", "us-east-1")):
        (plan,) = specs[server]["plans"]
        assert (plan["target"], plan["ok"], plan["exit_code"]) == ("lambda", True, 0)
        assert plan["request"]["environment"] == "staging"
        assert plan["request"]["artifact"]["digest"].startswith("sha256:")
        assert plan["outputs"]["url"].endswith(f".lambda-url.{region}.on.aws/mcp")
    assert specs["beta"]["plans"][0]["warnings"]  # auth none in a cloud: the guard rail says so


def test_plan_of_a_fleet_goes_on_after_a_failure(run_cli: Run, fleet: Path) -> None:
    # a local plan checks that every secret can be read: alpha's and gamma's token cannot
    result = run_cli("plan", str(fleet), "--json")
    assert result.code == 2
    specs = result.json()["specs"]
    assert [(s["server"], s["exit_code"], [p["exit_code"] for p in s["plans"]]) for s in specs] == [
        ("alpha", 2, [2]),
        ("beta", 0, [0]),
        ("gamma", 2, [2]),
    ]


BROKEN = """\
[server]
name = "broken"
entry = "demo.app:app"

[targets.lamda]
"""


def test_a_broken_spec_is_reported_and_the_others_still_listed(
    run_cli: Run, tmp_path: Path
) -> None:
    server_project(tmp_path / "good", ALPHA)
    bad = server_project(tmp_path / "bad", BROKEN)
    result = run_cli("matrix", str(tmp_path), "--json")
    assert result.code == 2
    data = result.json()
    assert data["ok"] is False
    assert [e["server"] for e in data["entries"]] == ["alpha", "alpha", "alpha"]
    (error,) = data["errors"]
    assert (error["spec"], error["file"], error["line"], error["path"]) == (
        "bad/mcp-deploy.toml",
        str(bad),
        5,
        "targets.lamda",
    )
    text = run_cli("matrix", str(tmp_path))
    assert text.code == 2
    assert text.out.count("good/mcp-deploy.toml") == 3
    assert f"{bad}:5: targets.lamda" in text.err and "1 spec(s) did not load" in text.err

    status = run_cli("status", str(tmp_path), "--json")
    assert status.code == 2
    broken, good = status.json()["specs"]
    assert (broken["spec"], broken["server"], broken["ok"], broken["exit_code"]) == (
        "bad/mcp-deploy.toml",
        None,
        False,
        2,
    )
    assert broken["errors"][0]["path"] == "targets.lamda"
    assert (good["server"], good["ok"], good["deployments"]) == ("alpha", True, [])


def test_a_pyproject_that_is_not_toml_counts_when_it_names_the_table(tmp_path: Path) -> None:
    server_project(tmp_path / "a", "[tool.mcp-deploy.server\nname = 'x'\n", "pyproject.toml")
    server_project(tmp_path / "b", "[project\nname = 'mcp-deploy'\n", "pyproject.toml")
    assert [p.relative_to(tmp_path).as_posix() for p in find_specs(tmp_path)] == [
        "a/pyproject.toml"
    ]


@pytest.mark.parametrize(
    ("codes", "worst"),
    [([], 0), ([0, 0], 0), ([0, 75], 75), ([75, 1, 0], 1), ([3, 4], 4), ([1, 2, 75], 2)],
)
def test_worst_exit(codes: list[int], worst: int) -> None:
    assert worst_exit(codes) == worst


def test_matrix_imports_no_heavy_sdk(fleet: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.unit.test_startup_imports import FORBIDDEN, PROBE

    args = ["matrix", str(fleet), "--json"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(FORBIDDEN), json.dumps(args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(proc.stderr.rsplit("PROBE ", 1)[1])
    assert report == {"code": 0, "attempts": [], "loaded": []}
