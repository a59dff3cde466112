"""`mcp-deploy build`: package the spec's server for each requested target."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.artifacts import Artifact
from orchestrator.build.context import BuildContext, default_store
from orchestrator.environments import get_target
from orchestrator.errors import input_error
from orchestrator.spec.loader import LoadedSpec
from targets import registry
from targets.base import Packager, TargetOptions


def buildable_targets() -> list[str]:
    """Names of the targets that can build an artifact, sorted."""
    return [name for name, target in registry().items() if isinstance(target, Packager)]


def build_options(loaded: LoadedSpec, target: str) -> TargetOptions:
    """The target's options from the spec's top level (builds never see an environment)."""
    table = loaded.spec.targets.by_name().get(target)
    if isinstance(table, TargetOptions):
        return table
    return registry()[target].options_model()


def build(
    loaded: LoadedSpec,
    target: str = "all",
    progress: Callable[[str], None] | None = None,
    *,
    update_base: bool = False,
) -> list[Artifact]:
    """Build `target` ("all": every buildable target the spec declares, else every buildable
    target), reusing stored artifacts whose inputs are unchanged. With `update_base`, the
    default base images pinned in `mcp-deploy.lock` are resolved again and their entries
    rewritten (see `BuildContext.update_base`). Raises `InputError` for a target that cannot
    be built, `OperationError` when a build fails. Publishing is
    `orchestrator.deploy.artifact`'s job."""
    buildable = buildable_targets()
    if target == "all":
        declared = [name for name in loaded.spec.targets.declared() if name in buildable]
        names = declared or buildable
    else:
        get_target(target)
        if target not in buildable:
            raise input_error(
                "--target",
                f"target '{target}' cannot be built yet",
                "buildable: " + ", ".join(buildable),
            )
        names = [target]
    report = progress or (lambda _step: None)
    artifacts: list[Artifact] = []
    for name in names:
        packager = registry()[name]
        assert isinstance(packager, Packager)

        def step(message: str, target: str = name) -> None:
            report(f"{target}: {message}")

        context = BuildContext(
            loaded=loaded, store=default_store(loaded), progress=step, update_base=update_base
        )
        options = build_options(loaded, name)
        artifact = packager.package(context, options)
        artifacts.append(artifact)
    return artifacts
