"""The Cloud Run image's base: which one, pinned to which digest, read from where, and
whether its Python is the spec's.

- `targets.cloudrun.base` (a `REPOSITORY@sha256:...` reference) always wins; the lock file is
  then neither read nor written.
- Otherwise the base is the official Docker Hub Python image of `server.python`,
  `docker.io/library/python:<minor>-slim`. The first build resolves that tag to its digest and
  pins it in `mcp-deploy.lock` next to the spec (`[targets.cloudrun.base]`: reference, digest,
  python, resolved_at) once its Python has passed the check below; later builds use the
  pinned digest without asking the registry. An entry for another reference (server.python
  changed) is resolved again, and so is any entry when the build asks for it
  (`BuildContext.update_base`).
- Bytes come from the registry's mirror when `MCP_DEPLOY_REGISTRY_MIRRORS` names one (for
  any base); what is recorded is always the canonical reference and the digest.
- Before anything is vendored the base's real Python minor is read from the image
  (`base_python`) and compared with `server.python`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.build.context import BuildContext
from orchestrator.build.lockfile import lock_path, lock_table, update_lock
from orchestrator.errors import InputError, OperationError
from orchestrator.oci import media
from orchestrator.oci.image import BaseImage, pull_base
from orchestrator.oci.mirrors import ENV as MIRRORS_ENV
from orchestrator.oci.mirrors import Mirror, mirrors_from_env, normalized, source_of
from orchestrator.oci.reference import Reference
from orchestrator.oci.registry import RegistryClient, RegistryError
from targets.cloudrun import CloudRunOptions
from targets.cloudrun.base_python import CACHE_FILE, Detected, PythonCache, image_python

BASE_KEY = ("targets", "cloudrun", "base")
# The lock's table is named after the spec key it stands in for.
LOCK_KEYS = BASE_KEY
PYTHON_KEY = ("server", "python")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def default_base(python: str) -> str:
    """The default base of a server on Python `python` (a minor such as "3.12")."""
    return f"docker.io/library/python:{python}-slim"


@dataclass(frozen=True)
class ChosenBase:
    """The base one build uses.

    `pinned` is the canonical reference pinned by digest (what the artifact's inputs record);
    `source` is where its bytes are read (a mirror, or the registry's API host), pinned by
    the same digest; `explicit` says it came from `targets.cloudrun.base`, else from the
    default through the lock file; `via` describes the source for messages."""

    pinned: Reference
    source: Reference
    explicit: bool
    via: str

    @property
    def identity(self) -> str:
        """What goes into the artifact's inputs hash: the pinned reference, without a tag."""
        return str(self.pinned.with_digest(self.digest))

    @property
    def digest(self) -> str:
        assert self.pinned.digest is not None
        return self.pinned.digest


def prepare_base(context: BuildContext, options: CloudRunOptions) -> ChosenBase:
    """The base for this build, its Python checked against `server.python`: the spec's
    `targets.cloudrun.base`, else the default base pinned through the lock file. The default
    base is resolved when the lock has no entry for it (or `context.update_base`), and the
    entry is written only once the resolved image's Python has passed the check, so the lock
    never pins a base the build refused.

    Raises `InputError` for a Python mismatch (see `check_python`), a malformed
    `MCP_DEPLOY_REGISTRY_MIRRORS` or an unreadable lock; `OperationError` (with the ways out)
    when the default base cannot be resolved or pulled."""
    python = context.loaded.spec.server.python
    return choose_base(
        context,
        options,
        default_base(python),
        {"python": python},
        lambda chosen: check_python(context, chosen, options.platforms),
    )


def choose_base(
    context: BuildContext,
    options: CloudRunOptions,
    default: str,
    identity: Mapping[str, str],
    check: Callable[[ChosenBase], None],
) -> ChosenBase:
    """`targets.cloudrun.base` when set, else `default` pinned through the lock file, passed
    through `check` (which raises when the base cannot serve the server) before the lock is
    written. `identity` (e.g. {"python": "3.12"}) is stored in the lock entry next to the
    reference, and an entry whose identity differs is resolved again."""
    mirrors = mirrors_from_env()
    if options.base is not None:
        if context.update_base:
            context.progress("targets.cloudrun.base is set: there is no default base to update")
        pinned = Reference.parse(options.base)
        chosen = ChosenBase(pinned, source_of(pinned, mirrors), True, _via(pinned, mirrors))
        check(chosen)
        return chosen
    wanted = normalized(Reference.parse(default))
    path = lock_path(context.loaded.path)
    entry = lock_table(path, LOCK_KEYS)
    pinned_digest = _matching_digest(entry, str(wanted), identity)
    if pinned_digest is not None and not context.update_base:
        pinned = wanted.with_digest(pinned_digest)
        chosen = ChosenBase(pinned, source_of(pinned, mirrors), False, _via(pinned, mirrors))
        check(chosen)
        return chosen
    context.progress(_why_resolving(entry, wanted, identity, context.update_base, path.name))
    digest = resolve_tag(context, wanted, mirrors)
    pinned = wanted.with_digest(digest)
    chosen = ChosenBase(pinned, source_of(pinned, mirrors), False, _via(pinned, mirrors))
    check(chosen)
    update_lock(
        path,
        LOCK_KEYS,
        {
            "reference": str(wanted),
            "digest": digest,
            **identity,
            "resolved_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    if entry is not None and entry.get("digest") == digest:
        context.progress(f"{wanted} is still {digest}; {path.name} refreshed")
    else:
        context.progress(f"pinned {wanted} to {digest} in {path.name}")
    return chosen


def resolve_tag(context: BuildContext, wanted: Reference, mirrors: Mapping[str, Mirror]) -> str:
    """The digest of the manifest or index `wanted`'s tag names now (read from its mirror
    when it has one); the document is kept in the store, so the pull that follows does not
    ask for it again. Raises `OperationError` with the ways out when it cannot be read."""
    source = source_of(wanted, mirrors)
    client = RegistryClient.for_reference(source)
    try:
        data, media_type, digest = client.get_manifest(source.repository, source.reference)
    except RegistryError as error:
        raise _unreachable(
            f"cannot resolve the default base image {wanted}", wanted, mirrors, error
        ) from None
    if media_type not in (*media.MANIFESTS, *media.INDEXES):
        raise OperationError(
            f"{source} is not an image (media type {media_type!r})",
            hint="set targets.cloudrun.base to a pinned Python image",
        )
    context.store.add_bytes(data)
    return digest


def pull(context: BuildContext, chosen: ChosenBase, platform: str) -> BaseImage:
    """The `platform` image of the base, its blobs in the store (fetched once, by digest).
    A default base that cannot be fetched is an `OperationError` with the ways out."""
    try:
        return pull_base(chosen.source, platform, context.store)
    except RegistryError as error:
        if chosen.explicit:
            raise
        raise _unreachable(
            f"cannot pull the default base image {chosen.pinned}",
            chosen.pinned,
            mirrors_from_env(),
            error,
        ) from None


def check_python(context: BuildContext, chosen: ChosenBase, platforms: Sequence[str]) -> None:
    """Compare the Python minor each platform's base image really has with `server.python`.

    The minor is read from the image (config, else layer file lists; see `base_python`) and
    cached under the store by base digest and platform. Raises `InputError` pointing at
    `targets.cloudrun.base` (or at `server.python` for the default base) on a mismatch, or
    when an explicit base's Python cannot be determined; `OperationError` when the default
    base's cannot."""
    python = context.loaded.spec.server.python
    cache = PythonCache(context.store.root / CACHE_FILE)
    for platform in platforms:
        key = f"{chosen.digest}|{platform}"
        detected = cache.get(key)
        if detected is None:
            context.progress(f"reading the Python of base {chosen.pinned} ({platform})")
            image = pull(context, chosen, platform)
            layers = [context.store.blob_path(layer["digest"]) for layer in image.layers]
            detected = image_python(image.config, layers)
            if detected is None:
                raise _undetermined(context, chosen, platform)
            cache.put(key, detected)
        if detected.minor != python:
            raise _mismatch(context, chosen, detected, python)


def _matching_digest(
    entry: dict[str, Any] | None, reference: str, identity: Mapping[str, str]
) -> str | None:
    if entry is None or entry.get("reference") != reference:
        return None
    if any(entry.get(key) != value for key, value in identity.items()):
        return None
    digest = entry.get("digest")
    return digest if isinstance(digest, str) and _DIGEST.match(digest) else None


def _why_resolving(
    entry: dict[str, Any] | None,
    wanted: Reference,
    identity: Mapping[str, str],
    update: bool,
    lock: str,
) -> str:
    if update:
        return f"updating the base: resolving {wanted}"
    if entry is None:
        return f"no base pinned in {lock}: resolving the default base {wanted}"
    for key, value in identity.items():
        if entry.get(key) != value:
            return (
                f"server.{key} is {value} but {lock} pins {entry.get('reference')}: "
                f"resolving {wanted}"
            )
    if entry.get("reference") != str(wanted):
        return f"{lock} pins {entry.get('reference')}, not {wanted}: resolving {wanted}"
    return f"the {lock} entry for {wanted} has no valid digest: resolving it again"


def _via(pinned: Reference, mirrors: Mapping[str, Mirror]) -> str:
    mirror = mirrors.get(normalized(pinned).registry)
    if mirror is not None:
        return f"the mirror {mirror} of {normalized(pinned).registry} ({MIRRORS_ENV})"
    source = source_of(pinned, mirrors)
    if source.registry != normalized(pinned).registry:
        return f"the registry {normalized(pinned).registry} ({source.registry})"
    return f"the registry {source.registry}"


def _unreachable(
    message: str, wanted: Reference, mirrors: Mapping[str, Mirror], error: OperationError
) -> OperationError:
    detail = "\n".join(part for part in (error.message, error.detail) if part)
    registry = normalized(wanted).registry
    mirror = (
        f"check the mirror {MIRRORS_ENV} names for {registry} (or unset it)"
        if registry in mirrors
        else f"set {MIRRORS_ENV} (e.g. {registry}=HOST[:PORT][/PREFIX]) to a mirror you can reach"
    )
    return OperationError(
        f"{message} from {_via(wanted, mirrors)}",
        hint="set targets.cloudrun.base to a Python image pinned by digest "
        f"(REPOSITORY@sha256:...) in a registry you can reach, or {mirror}, or build where "
        f"{registry} is reachable",
        detail=detail,
    )


def _mismatch(
    context: BuildContext, chosen: ChosenBase, detected: Detected, python: str
) -> InputError:
    message = (
        f"the base image has Python {detected.minor} and server.python is {python} "
        f"({detected.evidence} in {chosen.pinned})"
    )
    if chosen.explicit:
        hint = (
            f"use a base image with Python {python} (pinned by digest), "
            f'or set server.python = "{detected.minor}"'
        )
        return InputError([context.loaded.issue(BASE_KEY, message, hint)])
    hint = (
        f"{chosen.via} serves another Python under {default_base(python)}: fix the mirror, "
        f"or set targets.cloudrun.base to a Python {python} image pinned by digest, "
        f'or set server.python = "{detected.minor}"'
    )
    return InputError([context.loaded.issue(PYTHON_KEY, message, hint)])


def _undetermined(
    context: BuildContext, chosen: ChosenBase, platform: str
) -> InputError | OperationError:
    message = (
        f"cannot tell which Python the base image {chosen.pinned} ({platform}) has: its "
        "config sets no PYTHON_VERSION and no python3 or python3.N is on its PATH"
    )
    python = context.loaded.spec.server.python
    if chosen.explicit:
        hint = f"use a base image that provides python3 of Python {python}, pinned by digest"
        return InputError([context.loaded.issue(BASE_KEY, message, hint)])
    return OperationError(
        message,
        hint=f"{chosen.via} serves an image without Python as {default_base(python)}: fix "
        "the mirror, or set targets.cloudrun.base to a pinned Python image",
    )
