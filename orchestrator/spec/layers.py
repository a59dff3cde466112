"""Layering of a spec's values for one environment: built-in default <- spec top level <-
`[environments.<env>]` <- command-line flags, with the layer each value came from.

Used by the spec's own checks and by `orchestrator.environments` (which resolves a whole
environment); it knows nothing of deployments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from orchestrator.errors import InputError, Issue
from orchestrator.secret_refs import SecretRef
from orchestrator.spec.issues import issues_from_validation
from orchestrator.suggest import hint_for
from targets import registry

if TYPE_CHECKING:
    from orchestrator.spec.loader import LoadedSpec
    from orchestrator.spec.model import ServerSpec
    from targets.base import TargetOptions

Layer = Literal["default", "spec", "environment", "flag"]


def merged_option_data(
    spec: ServerSpec, target: str, environment: str, flags: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Layer]]:
    """Raw option values for `target` in `environment`, and the layer of every option."""
    top: BaseModel | None = spec.targets.by_name().get(target)
    override: BaseModel | None = spec.environment(environment).targets.by_name().get(target)
    option_fields = registry()[target].options_model.model_fields
    data: dict[str, Any] = {}
    layers: dict[str, Layer] = dict.fromkeys(option_fields, "default")
    for layer, source in (("spec", top), ("environment", override)):
        if source is None:
            continue
        values = source.model_dump(include=source.model_fields_set)
        data.update(values)
        layers.update(dict.fromkeys(values, layer))  # type: ignore[arg-type]
    data.update(flags)
    layers.update(dict.fromkeys(flags, "flag"))
    return data, layers


def effective_options(
    loaded: LoadedSpec, target: str, environment: str, flags: Mapping[str, Any] | None = None
) -> tuple[TargetOptions, dict[str, Layer]]:
    """Validated options with their layers; problems are reported where their value was set."""
    flags = flags or {}
    model = registry()[target].options_model
    unknown = [key for key in flags if key not in model.model_fields]
    if unknown:
        raise InputError(
            [
                Issue(
                    where=f"--set {key}",
                    message=f"'{key}' is not an option of target '{target}'",
                    hint=hint_for(key, model.model_fields, noun="option"),
                )
                for key in unknown
            ]
        )
    data, layers = merged_option_data(loaded.spec, target, environment, flags)
    try:
        options = model.model_validate(data)
    except ValidationError as exc:

        def factory(loc: tuple[str | int, ...], message: str, hint: str | None) -> Issue:
            key = str(loc[0]) if loc else None
            layer = layers.get(key, "spec") if key else _table_layer(layers)
            if layer == "flag":
                return Issue(where=f"--set {key}", message=message, hint=hint)
            table = (
                ("environments", environment, "targets", target)
                if layer == "environment"
                else ("targets", target)
            )
            return loaded.issue((*table, *loc), f"{message} (in environment '{environment}')", hint)

        raise InputError(issues_from_validation(exc, model, factory)) from None
    in_cloud = not loaded.spec.is_local(environment)
    missing = [f for f in model.cloud_fields if in_cloud and data.get(f) is None]
    if missing:
        raise InputError(
            [
                loaded.issue(
                    ("environments", environment, "targets", target, name)
                    if environment in loaded.spec.environments
                    else ("targets", target, name),
                    f"'{name}' is required to deploy to '{target}' in environment '{environment}'",
                    f"set it under [targets.{target}] or "
                    f"[environments.{environment}.targets.{target}]",
                )
                for name in missing
            ]
        )
    return options, layers


def _table_layer(layers: Mapping[str, Layer]) -> Layer:
    """The highest layer that set any option: where a cross-option problem is reported."""
    order: tuple[Layer, ...] = ("flag", "environment", "spec")
    return next((layer for layer in order if layer in layers.values()), "spec")


def secret_sources(spec: ServerSpec, environment: str) -> dict[str, tuple[SecretRef, Layer]]:
    """Where each declared secret's value comes from in `environment`, and which layer said so."""
    overrides = spec.environment(environment).secrets
    sources: dict[str, tuple[SecretRef, Layer]] = {}
    for name, declaration in spec.secrets.items():
        if name in overrides:
            sources[name] = (overrides[name], "environment")
        elif declaration.source is not None:
            sources[name] = (declaration.source, "spec")
        else:
            sources[name] = (SecretRef("env", name), "default")
    return sources


def config_values(
    spec: ServerSpec, environment: str, flags: Mapping[str, str]
) -> dict[str, tuple[str, Layer]]:
    """Plain config for `environment` with the layer of each value."""
    values: dict[str, tuple[str, Layer]] = {k: (v, "spec") for k, v in spec.config.items()}
    values.update({k: (v, "environment") for k, v in spec.environment(environment).config.items()})
    values.update({k: (v, "flag") for k, v in flags.items()})
    return values
