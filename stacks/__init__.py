"""Pulumi programs, one per target: each a pure function of a deployment request.

Programs import their provider SDK themselves, so nothing here is imported on the command line's
start-up path: `program_for(target)` imports the target's program module only when asked (as
`targets.registry()` finds targets), and that module brings its provider SDK with it.

The contract of a program (`Program`), called by the engine inside a Pulumi program run:
- `request`: the `DeploymentRequest` (secrets as references, never values);
- `secret_values`: secret NAME -> value, only for the `env:`/`file:` sources, read by the engine
  at the last moment and handed over through the inline program's closure (never stack config);
  a program wraps each in `pulumi.Output.secret` before any resource sees it;
- `artifact_path` (keyword): where the artifact's bytes are on this machine (the store's copy
  of `request.artifact`, whose digest it must match);
- returns the stack outputs by name (values or `pulumi.Output`s), which the engine exports.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from orchestrator.deploy.request import DeploymentRequest

# target name -> module (in this package) that defines `program`
_PROGRAMS: Mapping[str, str] = {
    "cloudrun": "cloudrun",
    "lambda": "aws_lambda",
    "workers": "workers",
}

# target name -> the environment variables its provider reads credentials and settings from
# (glob patterns): the only cloud variables the Pulumi CLI and its plugins are given.
_PROVIDER_ENVIRONMENT: Mapping[str, tuple[str, ...]] = {
    "cloudrun": ("GOOGLE_*", "CLOUDSDK_*", "GCLOUD_*"),
    "lambda": ("AWS_*",),
    "workers": ("CLOUDFLARE_*",),
}


class Program(Protocol):
    """`program(request, secret_values, *, artifact_path) -> outputs` (see the module doc)."""

    def __call__(
        self,
        request: DeploymentRequest,
        secret_values: Mapping[str, str],
        /,
        *,
        artifact_path: str,
    ) -> dict[str, Any]: ...


def program_names() -> list[str]:
    """Targets that have a Pulumi program, sorted."""
    return sorted(_PROGRAMS)


def program_for(target: str) -> Program:
    """The Pulumi program of `target`, importing its module (and provider SDK) now.

    Raises KeyError for a target without a program.
    """
    if target not in _PROGRAMS:
        raise KeyError(f"no Pulumi program for target {target!r} (programs: {program_names()})")
    module = importlib.import_module(f"{__name__}.{_PROGRAMS[target]}")
    program: Program = module.program
    return program


def provider_environment(target: str) -> tuple[str, ...]:
    """Glob patterns of the environment variables `target`'s provider reads (credentials,
    region, endpoints); nothing for an unknown target."""
    return _PROVIDER_ENVIRONMENT.get(target, ())
