"""The one seam between mcp-deploy and the Pulumi CLI: `ScrubbedCommand`, a `PulumiCommand`
that runs the CLI with a scrubbed environment and no stdin.

The Automation API runs every CLI call through `PulumiCommand.run`, which by default hands the
CLI (and the provider plugins it starts) this process's whole environment. Here the CLI gets
only what it and the target's provider need (`cli_environment`): the basics (PATH, HOME, TLS,
proxies, locale), Pulumi's own variables, and the cloud credentials the target's provider reads.
The variables that carry the deployment's `env:` secrets are not passed (their values reach the
program in this process, never the CLI's environment), nor anything else.

`find_cli` looks for the CLI: `$MCP_DEPLOY_PULUMI_ROOT/bin/pulumi`, then `pulumi` on PATH, then
`~/.pulumi/bin/pulumi` (where Pulumi's installer puts it).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO

from pulumi.automation import PulumiCommand
from pulumi.automation._cmd import CommandResult, OnOutput
from pulumi.automation.errors import create_command_error
from semver import VersionInfo

ROOT_VARIABLE = "MCP_DEPLOY_PULUMI_ROOT"
INSTALL_HINT = (
    "install the Pulumi CLI (https://www.pulumi.com/docs/iac/download-install/: "
    "curl -fsSL https://get.pulumi.com | sh, or brew install pulumi), or point "
    f"{ROOT_VARIABLE} at a directory holding bin/pulumi; without a CLI, "
    "`mcp-deploy plan --offline` still shows what a deploy would create"
)

# Always passed: what any program needs to run, reach the network and find certificates.
BASE_VARIABLES = (
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
)
# Pulumi's own settings: home, access token, passphrase, backend, logging switches.
PULUMI_VARIABLES = ("PULUMI_*",)
# Never passed, even when a pattern matches: the Automation API sets these itself.
NEVER = ("PULUMI_AUTOMATION_API",)


def find_cli(environ: Mapping[str, str]) -> Path | None:
    """The Pulumi CLI this machine has, or None (see the module docstring)."""
    root = environ.get(ROOT_VARIABLE)
    if root:
        candidate = Path(root) / "bin" / "pulumi"
        return candidate if _executable(candidate) else None
    on_path = shutil.which("pulumi", path=environ.get("PATH"))
    if on_path:
        return Path(on_path)
    home = environ.get("HOME")
    if home and _executable(Path(home) / ".pulumi" / "bin" / "pulumi"):
        return Path(home) / ".pulumi" / "bin" / "pulumi"
    return None


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def cli_environment(
    environ: Mapping[str, str], provider_variables: Iterable[str], withheld: Iterable[str] = ()
) -> dict[str, str]:
    """The environment the CLI runs with: the base and Pulumi variables, plus those matching
    `provider_variables` (glob patterns such as `AWS_*`), minus `withheld` names (the
    variables `env:` secrets are read from)."""
    patterns = (*BASE_VARIABLES, *PULUMI_VARIABLES, *provider_variables)
    excluded = set(withheld) | set(NEVER)
    return {
        name: value
        for name, value in environ.items()
        if name not in excluded and any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }


class ScrubbedCommand(PulumiCommand):
    """`PulumiCommand` for the CLI at `binary`, run with exactly `environment` (plus the
    variables each call adds) and stdin closed. Checks the CLI's version at once, like the
    SDK's own (`OperationError`-free: raises `subprocess.CalledProcessError`/`OSError`)."""

    def __init__(self, binary: Path, environment: Mapping[str, str]) -> None:
        # The SDK's __init__ would run `pulumi version` with this process's environment.
        self.command = str(binary)
        self.environment = dict(environment)
        text = subprocess.run(
            [self.command, "version"],
            env={**self.environment, "PULUMI_SKIP_UPDATE_CHECK": "true"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        self.version = VersionInfo.parse(text.removeprefix("v"))

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: OnOutput | None = None,
        on_error: OnOutput | None = None,
    ) -> CommandResult:
        """Run `pulumi --non-interactive ARGS` in `cwd`; `CommandError` when it fails."""
        separator = args.index("--") if "--" in args else len(args)
        if "--non-interactive" not in args[:separator]:
            args.insert(0, "--non-interactive")
        env = {
            **self.environment,
            **additional_env,
            "PULUMI_AUTOMATION_API": "true",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
        }
        env["PATH"] = os.pathsep.join(
            [os.path.dirname(self.command), *filter(None, [env.get("PATH")])]
        )
        stdout: list[str] = []
        stderr: list[str] = []
        with subprocess.Popen(
            [self.command, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            encoding="utf-8",
            errors="replace",
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            readers = [
                threading.Thread(target=_consume, args=(process.stdout, on_output, stdout)),
                threading.Thread(target=_consume, args=(process.stderr, on_error, stderr)),
            ]
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join()
            code = process.wait()
        result = CommandResult(stdout="\n".join(stdout), stderr="\n".join(stderr), code=code)
        if code != 0:
            raise create_command_error(result)
        return result


def _consume(stream: IO[str], callback: OnOutput | None, lines: list[str]) -> None:
    for line in iter(stream.readline, ""):
        stripped = line.rstrip()
        if callback is not None:
            callback(stripped)
        lines.append(stripped)
    stream.close()
