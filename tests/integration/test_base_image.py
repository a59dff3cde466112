"""The tests' Python base image is real and reproducible: made from Debian packages and pushed to
the local registry, docker pulls it by digest and runs Python in it as user 65532, without
network and on a read-only root; building it again gives the same digest.

Needs the services of `scripts/services start` (a Docker engine, a registry on 127.0.0.1:5000).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.debian_base import BaseImageError, python_base_image

pytestmark = pytest.mark.integration

START = "start the test services with `scripts/services start`"


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def base_image() -> str:
    """Build (once; cached) and push the base. A missing registry fails the test, never skips."""
    try:
        return python_base_image()
    except BaseImageError as error:
        message = str(error)
    pytest.fail(message, pytrace=False)


def pulled() -> str:
    """The base image, pulled into the Docker engine by digest."""
    reference = base_image()
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    except FileNotFoundError:
        info = subprocess.CompletedProcess([], 127, "", "no docker command")
    if info.returncode != 0:
        pytest.fail(f"no Docker engine answers ({info.stderr.strip()}); {START}", pytrace=False)
    pull = docker("pull", "--quiet", reference)
    assert pull.returncode == 0, pull.stderr
    return reference


def test_the_reference_is_pinned_by_digest() -> None:
    reference = base_image()
    assert reference.startswith("127.0.0.1:5000/python@sha256:")
    assert len(reference.rpartition(":")[2]) == 64


def test_python_runs_as_nonroot_offline_on_a_read_only_root() -> None:
    run = docker(
        "run", "--rm", "--network", "none", "--read-only", "--user", "65532", pulled(),
        "python3", "-c", "import ssl, json, sqlite3, ctypes; print('ok')",
    )  # fmt: skip
    assert (run.returncode, run.stdout, run.stderr) == (0, "ok\n", "")


def test_image_config() -> None:
    reference = pulled()
    inspect = docker("image", "inspect", reference)
    assert inspect.returncode == 0, inspect.stderr
    (image,) = json.loads(inspect.stdout)
    assert (image["Os"], image["Architecture"]) == ("linux", "amd64")
    assert image["Config"]["User"] == "65532"
    assert image["Config"]["Env"] == ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"]
    assert reference in image["RepoDigests"]


def test_a_second_build_gives_the_same_digest() -> None:
    first = base_image()
    assert python_base_image(rebuild=True) == first


def test_only_debian_12_python_is_available() -> None:
    with pytest.raises(BaseImageError, match=r"only Python 3\.11"):
        python_base_image(python="3.12")
