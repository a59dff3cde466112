"""The tests' Node.js base image is real and reproducible: the Debian Python base plus libstdc++
and the official node binary of each pinned major, pushed to the local registry; docker pulls it
by digest and runs node in it as user 65532, without network and on a read-only root, with
https and crypto working (OpenSSL is inside the node binary); building it again gives the same
digest; a loopback "Docker Hub mirror" serves it as `library/node:<major>-slim`.

Needs the services of `scripts/services start` (a Docker engine, a registry on 127.0.0.1:5000),
and the npm registry and Debian package lists the first time (downloads are cached).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from orchestrator.oci.registry import RegistryClient
from tests.support.debian_base import python_base_image
from tests.support.mirror import REGISTRY, mirror_node_base, new_prefix
from tests.support.node_base import NODE_VERSIONS, BaseImageError, node_base_image

pytestmark = pytest.mark.integration

START = "start the test services with `scripts/services start`"
MAJORS = sorted(NODE_VERSIONS)


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def base_image(major: str) -> str:
    """Build (once; cached) and push the base. A missing registry fails the test, never skips."""
    try:
        return node_base_image(major=major)
    except BaseImageError as error:
        message = str(error)
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="module", params=MAJORS)
def pulled(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(major, reference): the base image of each pinned major, pulled into Docker by digest."""
    major: str = request.param
    reference = base_image(major)
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    except FileNotFoundError:
        info = subprocess.CompletedProcess([], 127, "", "no docker command")
    if info.returncode != 0:
        pytest.fail(f"no Docker engine answers ({info.stderr.strip()}); {START}", pytrace=False)
    pull = docker("pull", "--quiet", reference)
    assert pull.returncode == 0, pull.stderr
    return major, reference


def node(reference: str, script: str) -> subprocess.CompletedProcess[str]:
    """`node -e script` in the image, as its configured user, offline, on a read-only root."""
    return docker(
        "run", "--rm", "--network", "none", "--read-only", reference, "node", "-e", script
    )  # fmt: skip


def test_the_reference_is_pinned_by_digest() -> None:
    reference = base_image("22")
    assert reference.startswith("127.0.0.1:5000/node@sha256:")
    assert len(reference.rpartition(":")[2]) == 64


def test_node_prints_the_pinned_version(pulled: tuple[str, str]) -> None:
    major, reference = pulled
    run = node(reference, "console.log(process.version)")
    assert (run.returncode, run.stdout, run.stderr) == (0, f"v{NODE_VERSIONS[major][0]}\n", "")


def test_node_runs_as_nonroot(pulled: tuple[str, str]) -> None:
    _, reference = pulled
    script = (
        "const os = require('os');"
        "console.log(process.getuid(), process.getgid(), os.userInfo().username, os.homedir())"
    )
    run = node(reference, script)
    expected = "65532 65532 nonroot /home/nonroot\n"
    assert (run.returncode, run.stdout, run.stderr) == (0, expected, "")


def test_https_and_crypto_work_with_openssl_inside_node(pulled: tuple[str, str]) -> None:
    _, reference = pulled
    script = """
        require('https');
        const crypto = require('crypto');
        const tls = require('tls');
        const digest = crypto.createHash('sha256').update('abc').digest('hex');
        const maps = require('fs').readFileSync('/proc/self/maps', 'utf8');
        console.log(JSON.stringify({
            digest,
            openssl: process.versions.openssl,
            roots: tls.rootCertificates.length,
            ciphers: tls.getCiphers().includes('tls_aes_256_gcm_sha384'),
            shared: /libssl|libcrypto/.test(maps),
        }));
    """
    run = node(reference, script)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    assert found["digest"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert found["openssl"].startswith("3.")
    assert found["roots"] > 100
    assert found["ciphers"] is True
    assert found["shared"] is False  # statically linked: no system OpenSSL is loaded


def test_the_system_ca_bundle_is_there_for_node(pulled: tuple[str, str]) -> None:
    _, reference = pulled
    script = (
        "const pem = require('fs').readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8');"
        "console.log(pem.includes('-----BEGIN CERTIFICATE-----'))"
    )
    run = node(reference, script)
    assert (run.returncode, run.stdout) == (0, "true\n"), run.stderr


def test_image_config(pulled: tuple[str, str]) -> None:
    major, reference = pulled
    inspect = docker("image", "inspect", reference)
    assert inspect.returncode == 0, inspect.stderr
    (image,) = json.loads(inspect.stdout)
    assert (image["Os"], image["Architecture"]) == ("linux", "amd64")
    assert image["Config"]["User"] == "65532"
    assert image["Config"]["Cmd"] == ["node"]
    assert image["Config"]["Env"] == [
        "PATH=/usr/local/bin:/usr/bin:/bin",
        f"NODE_VERSION={NODE_VERSIONS[major][0]}",
    ]
    assert reference in image["RepoDigests"]


def test_the_python_base_layers_are_shared() -> None:
    client = RegistryClient(REGISTRY, "http")
    python, node_image = python_base_image(), base_image("22")
    base, _, _ = client.get_manifest("python", python.rpartition("@")[2])
    manifest, _, _ = client.get_manifest("node", node_image.rpartition("@")[2])
    base_layers = json.loads(base)["layers"]
    layers = json.loads(manifest)["layers"]
    assert layers[:-1] == base_layers
    assert len(layers) == len(base_layers) + 1


def test_a_second_build_gives_the_same_digest() -> None:
    first = base_image("22")
    assert node_base_image(major="22", rebuild=True) == first


def test_only_the_pinned_majors_are_available() -> None:
    with pytest.raises(BaseImageError, match=r"pinned majors are 20, 22"):
        node_base_image(major="18")


def test_a_mirror_serves_it_as_the_docker_hub_node_image() -> None:
    prefix = new_prefix()
    digest = mirror_node_base(prefix)
    assert f"{REGISTRY}/node@{digest}" == base_image("22")
    client = RegistryClient(REGISTRY, "http")
    _, _, served = client.get_manifest(f"{prefix}/library/node", "22-slim")
    assert served == digest
    assert mirror_node_base(prefix, "20", tag="20") == base_image("20").rpartition("@")[2]
