"""A second OCI registry for tests and benchmarks: Debian's docker-registry on another
loopback port (scripts/services runs the first, on 127.0.0.1:5000)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.net import free_port, wait_for_port


@contextmanager
def second_registry(folder: Path) -> Iterator[str]:
    """Debian's docker-registry on another loopback port, configured like scripts/services,
    its storage and log in `folder`; yields `host:port`, stops it by its PID afterwards."""
    address = f"127.0.0.1:{free_port()}"
    config = folder / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn, accesslog: {disabled: true}}\n"
        "storage:\n"
        f"  filesystem: {{rootdirectory: {folder / 'storage'}}}\n"
        "  delete: {enabled: true}\n"
        "  cache: {blobdescriptor: inmemory}\n"
        f'http: {{addr: "{address}"}}\n'
    )
    log = folder / "registry.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(
            "127.0.0.1",
            int(address.rsplit(":", 1)[1]),
            timeout=30,
            gone=lambda: process.poll() is not None,
            describe=lambda: log.read_text(errors="replace")[-2000:],
        )
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
