"""Cross-checks that need the whole spec: references between tables, each environment's
effective target options, and the files the spec points at.

`check_spec` returns every problem as an `Issue` (empty list = valid); it never raises.
`spec_warnings` returns what is valid but worth a word (what a cloud environment leaves open:
see `orchestrator.spec.exposure`), for `validate` to print.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import naming
from orchestrator.errors import InputError, Issue
from orchestrator.spec.auth_checks import oauth_problems, oauth_warnings
from orchestrator.spec.exposure import (
    PUBLIC_CONSEQUENCE,
    exposure,
    title,
)
from orchestrator.spec.layers import effective_options, secret_sources
from orchestrator.spec.server_checks import server_shape, targets_in
from orchestrator.suggest import hint_for
from targets import registry

if TYPE_CHECKING:
    from orchestrator.spec.loader import LoadedSpec
    from orchestrator.spec.model import EnvironmentSection, ServerSpec


def spec_warnings(loaded: LoadedSpec) -> list[Issue]:
    """What is valid but worth a word (`validate` prints them; exit code 0): each target that
    a cloud environment serves without authentication on a public URL, and each cloud
    environment whose bearer token is read on the deploying machine (`env:`/`file:`), and
    what an OAuth preset's identity provider lacks for MCP clients.
    Call it on a spec that loaded; never raises."""
    return [*_public_warnings(loaded), *oauth_warnings(loaded)]


def check_spec(loaded: LoadedSpec) -> list[Issue]:
    """All cross-table and per-environment problems of a spec whose shape is already valid."""
    return [
        *_auth(loaded),
        *oauth_problems(loaded),
        *server_shape(loaded),
        *_names(loaded),
        *_promotion(loaded),
        *_kinds(loaded),
        *_local_sources(loaded),
        *_smoke(loaded),
        *_environment_targets(loaded),
        *_build_fields_not_per_environment(loaded),
        *_files(loaded),
    ]


def _auth(loaded: LoadedSpec) -> Iterator[Issue]:
    spec = loaded.spec
    if spec.auth.mode == "bearer":
        declared = spec.secrets.get(spec.auth.token_secret)
        if declared is None:
            yield loaded.issue(
                ("auth", "token_secret"),
                f"bearer auth reads its token from secret '{spec.auth.token_secret}', "
                "which is not declared",
                f'declare [secrets.{spec.auth.token_secret}], or set auth.mode = "none" '
                "to serve without authentication",
            )
        elif not declared.required:
            yield loaded.issue(
                ("secrets", spec.auth.token_secret, "required"),
                "the bearer token secret must be required",
                "remove 'required = false'",
            )
    yield from _public_acknowledged(loaded)
    if spec.auth.mode == "iam":
        # a target declared only in an environment's layer counts too
        tables = {name: f"targets.{name}" for name in spec.targets.declared()}
        for env_name in spec.environment_names():
            for name in spec.environment(env_name).targets.declared():
                tables.setdefault(name, f"environments.{env_name}.targets.{name}")
        for name, table in sorted(tables.items()):
            target = registry()[name]
            if not target.supports_iam_auth:
                yield loaded.issue(
                    ("auth", "mode"),
                    f'auth.mode = "iam" but {target.title} ({table}) has no IAM authentication',
                    'use auth.mode = "bearer", or remove the target',
                )


def cloud_environments(spec: ServerSpec) -> list[str]:
    """The environments that deploy to the clouds (kind pulumi), in spec order."""
    return [name for name in spec.environment_names() if not spec.is_local(name)]


def _public_acknowledged(loaded: LoadedSpec) -> Iterator[Issue]:
    """`mode = "none"` reaches a cloud only with `acknowledge_public = true`, which means
    nothing with another mode."""
    auth = loaded.spec.auth
    if auth.mode != "none":
        if auth.acknowledge_public:
            yield loaded.issue(
                ("auth", "acknowledge_public"),
                f'acknowledge_public applies only to mode = "none"; auth.mode is "{auth.mode}"',
                "remove the line",
            )
        return
    clouds = cloud_environments(loaded.spec)
    if clouds and not auth.acknowledge_public:
        listed = ", ".join(f"'{name}'" for name in clouds)
        noun = "environment" if len(clouds) == 1 else "environments"
        iam = [target.title for target in registry().values() if target.supports_iam_auth]
        yield loaded.issue(
            ("auth", "mode"),
            f'auth.mode = "none" deploys the server without authentication to the clouds: '
            f"cloud {noun} {listed} would let anyone who can reach its URL call its tools",
            "if that is intended, add acknowledge_public = true under [auth]; otherwise use "
            'mode = "bearer" (a token from a declared secret) or mode = "iam" (the platform\'s '
            f"own IAM, on {' and '.join(iam)})",
        )


def _names(loaded: LoadedSpec) -> Iterator[Issue]:
    spec = loaded.spec
    declared = set(spec.secrets)
    for name in spec.config:
        if name in declared:
            yield loaded.issue(
                ("config", name), f"'{name}' is both config and a declared secret", "keep one"
            )
    for env_name, env in spec.environments.items():
        for name in env.config:
            if name in declared:
                yield loaded.issue(
                    ("environments", env_name, "config", name),
                    f"'{name}' is a declared secret; give its source under secrets, not config",
                    f'write secrets.{name} = "env:..." in [environments.{env_name}]',
                )
        for name in env.secrets:
            if name not in declared:
                yield loaded.issue(
                    ("environments", env_name, "secrets", name),
                    f"secret '{name}' is not declared",
                    hint_for(name, declared, noun="declared secret")
                    + f" (declare it as [secrets.{name}])",
                )


def _promotion(loaded: LoadedSpec) -> Iterator[Issue]:
    spec = loaded.spec
    names = spec.environment_names()
    for env_name, env in spec.environments.items():
        source = env.promote_from
        if source is None:
            continue
        where = ("environments", env_name, "promote_from")
        if env_name == naming.LOCAL_ENV:
            yield loaded.issue(where, "'local' is built from source; it cannot promote_from")
        elif source == env_name:
            yield loaded.issue(where, "an environment cannot promote from itself")
        elif source not in names:
            yield loaded.issue(
                where,
                f"unknown environment '{source}'",
                hint_for(source, names, noun="environment"),
            )
        elif _cycle_from(spec.environments, env_name):
            yield loaded.issue(where, "promotion forms a cycle", "promote_from chains must end")


def _cycle_from(environments: Mapping[str, EnvironmentSection], start: str) -> bool:
    seen = {start}
    current: str | None = start
    while current is not None:
        env = environments.get(current)
        current = env.promote_from if env is not None else None
        if current == start:
            return True
        if current in seen:
            return False
        if current is not None:
            seen.add(current)
    return False


def _local_sources(loaded: LoadedSpec) -> Iterator[Issue]:
    """Environments of kind local read their secrets on this machine: env: and file: only."""
    spec = loaded.spec
    for env_name in spec.environment_names():
        if not spec.is_local(env_name):
            continue
        for name, (ref, layer) in secret_sources(spec, env_name).items():
            if ref.is_local:
                continue
            where = (
                ("environments", env_name, "secrets", name)
                if layer == "environment"
                else ("secrets", name, "source")
            )
            yield loaded.issue(
                where,
                f"environment '{env_name}' is of kind local and reads its secrets on this "
                f"machine; '{ref.scheme}' needs a cloud",
                f'give [environments.{env_name}] secrets.{name} = "env:..." or "file:..."',
            )


def _kinds(loaded: LoadedSpec) -> Iterator[Issue]:
    local = loaded.spec.environments.get(naming.LOCAL_ENV)
    if local is not None and local.kind not in (None, "local"):
        yield loaded.issue(
            ("environments", naming.LOCAL_ENV, "kind"),
            "the default environment 'local' always runs on this machine (kind local)",
            "remove the line, and declare another environment for the clouds",
        )


def _smoke(loaded: LoadedSpec) -> Iterator[Issue]:
    smoke = loaded.spec.smoke
    if smoke.tool is None:
        for key in ("arguments", "expect"):
            if key in smoke.model_fields_set:
                yield loaded.issue(("smoke", key), f"smoke.{key} needs smoke.tool", "name the tool")


def _environment_targets(loaded: LoadedSpec) -> Iterator[Issue]:
    spec = loaded.spec
    for env_name in spec.environment_names():
        for target in targets_in(spec, env_name):
            try:
                effective_options(loaded, target, env_name)
            except InputError as exc:
                yield from exc.issues


def _public_warnings(loaded: LoadedSpec) -> Iterator[Issue]:
    """One warning per target and public entry, naming the cloud environments it serves."""
    spec = loaded.spec
    if spec.auth.mode != "none":
        return
    found: dict[tuple[str, str, str], list[str]] = {}
    for env_name in cloud_environments(spec):
        for target in targets_in(spec, env_name):
            try:
                options, _layers = effective_options(loaded, target, env_name)
            except InputError:  # reported by check_spec
                continue
            exposed = exposure(spec, env_name, target, options.model_dump(mode="json"))
            if exposed is not None:
                found.setdefault((target, exposed.entry, exposed.hint), []).append(env_name)
    for (target, entry, hint), environments in found.items():
        listed = ", ".join(f"'{name}'" for name in environments)
        noun = "environment" if len(environments) == 1 else "environments"
        where = (
            ("targets", target)
            if target in spec.targets.declared()
            else ("environments", environments[0], "targets", target)
        )
        yield loaded.issue(
            where,
            f"{title(target)} serves the server without authentication on {entry} in cloud "
            f"{noun} {listed}: {PUBLIC_CONSEQUENCE}",
            hint,
        )


def _build_fields_not_per_environment(loaded: LoadedSpec) -> Iterator[Issue]:
    for env_name, env in loaded.spec.environments.items():
        for target, overrides in env.targets.declared().items():
            model = registry()[target].options_model
            for name in sorted(overrides.model_fields_set & set(model.build_fields)):
                yield loaded.issue(
                    ("environments", env_name, "targets", target, name),
                    f"'{name}' shapes the artifact, which is the same in every environment",
                    f"set it once under [targets.{target}]",
                )


def _path_problem(path: Path, want_dir: bool) -> str | None:
    """Why `path` is not an existing directory (`want_dir`) or regular file, or None."""
    from orchestrator.files import os_reason

    try:
        mode = path.stat().st_mode
    except (OSError, ValueError) as error:
        return os_reason(error)
    if want_dir:
        return None if stat.S_ISDIR(mode) else "is not a directory"
    return None if stat.S_ISREG(mode) else "is not a regular file"


def _files(loaded: LoadedSpec) -> Iterator[Issue]:
    """server.source, the module of server.entry and server.ignore_file exist. (Whether the
    files that would go into an artifact can be selected is the build's own check:
    `orchestrator.build.checks`.)"""
    server = loaded.spec.server
    for key in ("source", "ignore_file"):
        if "\x00" in getattr(server, key):
            yield loaded.issue(("server", key), "contains a NUL byte", "write a plain path")
            return
    source = Path(os.path.realpath(loaded.root / server.source))
    problem = _path_problem(source, want_dir=True)
    if problem is not None:
        yield loaded.issue(
            ("server", "source"),
            f"directory '{server.source}' (relative to {loaded.root}) {problem}",
            "point server.source at the directory holding the server's code",
        )
        return
    python_entry = server.entry is not None and server.runtime == "python"
    module = server.entry.split(":", 1)[0] if server.entry is not None else None
    relative = (module or "").replace(".", "/")
    if python_entry and module is not None and not _module_exists(source, module):
        yield loaded.issue(
            ("server", "entry"),
            f"module '{module}' not found in {source}",
            f"expected {relative}.py or {relative}/__init__.py under server.source",
        )
    if server.runtime == "node" and server.entry is not None and "\x00" not in server.entry:
        problem = _path_problem(source / server.entry, want_dir=False)
        if problem is not None:
            yield loaded.issue(
                ("server", "entry"),
                f"'{server.entry}' in {source} {problem}",
                "point server.entry at the module whose default export is { fetch }",
            )
    if server.binary is not None and server.build is None and "\x00" not in server.binary:
        problem = _path_problem(source / server.binary, want_dir=False)
        if problem is not None:
            yield loaded.issue(
                ("server", "binary"),
                f"'{server.binary}' in {source} {problem}",
                "build it first, or set server.build to the command that produces it",
            )
    if "ignore_file" in server.model_fields_set:
        problem = _path_problem(source / server.ignore_file, want_dir=False)
        if problem is not None:
            yield loaded.issue(
                ("server", "ignore_file"), f"'{server.ignore_file}' in {source} {problem}"
            )
            return


def _module_exists(source: Path, module: str) -> bool:
    base = source.joinpath(*module.split("."))
    return any(
        _path_problem(path, want_dir=False) is None
        for path in (base.with_suffix(".py"), base / "__init__.py")
    )
