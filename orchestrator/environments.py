"""Resolve what one environment gets on one target, and where each value came from.

Layering, lowest to highest: built-in defaults ← spec top level ← `[environments.<env>]` ←
command-line flags. `local` always exists and is the default environment. Secrets stay
references (`SecretRef`) all the way through: nothing here reads a secret's value.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from orchestrator import naming
from orchestrator.errors import InputError, Issue, input_error
from orchestrator.secret_refs import SecretRef
from orchestrator.spec.layers import Layer, config_values, effective_options, secret_sources
from orchestrator.suggest import hint_for
from targets import registry

if TYPE_CHECKING:
    from orchestrator.spec.auth import AuthSection
    from orchestrator.spec.loader import LoadedSpec
    from orchestrator.spec.model import ServerSpec
    from targets.base import Target, TargetOptions


@dataclass(frozen=True)
class Setting:
    """One effective value: dotted key, JSON-ready value, and the layer that set it."""

    key: str
    value: Any
    layer: Layer


@dataclass(frozen=True)
class Overrides:
    """The command-line layer: `--config KEY=VALUE` and `--set OPTION=VALUE` flags."""

    config: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_flags(
        cls, config: Iterable[tuple[str, str]] = (), options: Iterable[tuple[str, str]] = ()
    ) -> Overrides:
        """Parse flag pairs. Option values are read as TOML scalars (`1024`, `true`, `"x"`),
        falling back to the raw text. Config names are checked like the spec's."""
        issues: list[Issue] = []
        config_values: dict[str, str] = {}
        for name, value in config:
            problem = naming.env_var_problem(name)
            if problem:
                issues.append(Issue(where=f"--config {name}", message=f"'{name}' {problem}"))
            config_values[name] = value
        if issues:
            raise InputError(issues)
        return cls(config=config_values, options={k: _scalar(v) for k, v in options})


def _scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


@dataclass(frozen=True)
class ResolvedEnvironment:
    """Everything one environment gets on one target, resolved, secrets still references."""

    server: str
    environment: str
    target: str
    config: Mapping[str, str]
    secrets: Mapping[str, SecretRef]
    options: TargetOptions
    auth: AuthSection
    promote_from: str | None
    settings: tuple[Setting, ...]


def get_target(name: str) -> Target:
    """The registered target called `name`; an `InputError` with did-you-mean otherwise."""
    targets = registry()
    if name not in targets:
        raise input_error(
            "--target", f"unknown target '{name}'", hint_for(name, targets, noun="target")
        )
    return targets[name]


def check_environment_name(spec: ServerSpec, name: str) -> None:
    """Raise an `InputError` with did-you-mean unless `name` is one of the spec's environments."""
    names = spec.environment_names()
    if name not in names:
        raise input_error(
            "--env", f"unknown environment '{name}'", hint_for(name, names, noun="environment")
        )


def _section_settings(prefix: str, section: BaseModel) -> list[Setting]:
    dumped = section.model_dump(mode="json", by_alias=True)
    return [
        Setting(f"{prefix}.{key}", value, "spec" if key in section.model_fields_set else "default")
        for key, value in dumped.items()
    ]


def resolve(
    loaded: LoadedSpec,
    environment: str = naming.LOCAL_ENV,
    target: str | None = None,
    overrides: Overrides | None = None,
) -> ResolvedEnvironment:
    """Resolve `environment` on `target` (default: the spec's only declared target).

    Raises `InputError` for an unknown environment or target, a flag that does not apply, or
    effective options that do not validate in this environment.
    """
    spec = loaded.spec
    overrides = overrides or Overrides()
    check_environment_name(spec, environment)
    target_name = target or _default_target(spec)
    target_info = get_target(target_name)
    if spec.auth.mode == "iam" and not target_info.supports_iam_auth:
        raise InputError(
            [
                loaded.issue(
                    ("auth", "mode"),
                    f"{target_info.title} has no IAM authentication",
                    'use auth.mode = "bearer" for this target',
                )
            ]
        )
    shaping = sorted(set(target_info.options_model.build_fields) & set(overrides.options))
    if shaping:
        raise InputError(
            [
                Issue(
                    where=f"--set {name}",
                    message=f"'{name}' shapes the artifact, which every environment shares",
                    hint=f"set targets.{target_name}.{name} in the spec and build again",
                )
                for name in shaping
            ]
        )
    secret_names = set(spec.secrets)
    clashing = sorted(secret_names & set(overrides.config))
    if clashing:
        raise InputError(
            [
                Issue(
                    where=f"--config {name}", message=f"'{name}' is a declared secret, not config"
                )
                for name in clashing
            ]
        )
    options, layers = effective_options(loaded, target_name, environment, overrides.options)
    config = config_values(spec, environment, overrides.config)
    secrets = secret_sources(spec, environment)
    env_section = spec.environment(environment)

    settings: list[Setting] = _section_settings("server", spec.server)
    settings += _section_settings("auth", spec.auth)
    settings += [Setting(f"config.{k}", v, layer) for k, (v, layer) in sorted(config.items())]
    settings += [
        Setting(f"secrets.{k}", str(ref), layer) for k, (ref, layer) in sorted(secrets.items())
    ]
    option_values = options.model_dump(mode="json")
    settings += [
        Setting(f"targets.{target_name}.{k}", option_values[k], layers[k]) for k in option_values
    ]
    settings += _section_settings("smoke", spec.smoke)
    if env_section.promote_from is not None:
        settings.append(Setting("promote_from", env_section.promote_from, "environment"))

    return ResolvedEnvironment(
        server=spec.server.name,
        environment=environment,
        target=target_name,
        config={k: v for k, (v, _) in config.items()},
        secrets={k: ref for k, (ref, _) in secrets.items()},
        options=options,
        auth=spec.auth,
        promote_from=env_section.promote_from,
        settings=tuple(settings),
    )


def _default_target(spec: ServerSpec) -> str:
    declared = list(spec.targets.declared())
    if len(declared) == 1:
        return declared[0]
    choices = declared or list(registry())
    raise input_error(
        "--target",
        "no target given" + (" and the spec declares several" if declared else ""),
        "pass --target, one of: " + ", ".join(choices),
    )
