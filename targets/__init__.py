"""Deployment targets, discovered from this package.

Every public module here that defines `TARGET` (an object satisfying `targets.base.Target`) is a
target; adding one needs no change anywhere else. Target modules must stay cheap to import: no
cloud SDK, no Docker SDK at module level.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from targets.base import Target

_NOT_TARGETS = frozenset({"base"})


@cache
def registry() -> dict[str, Target]:
    """All targets by name, in name order."""
    import importlib
    import pkgutil  # here, not at the top: the local Lambda's supervisor imports this package

    found: dict[str, Target] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name.startswith("_") or module_info.name in _NOT_TARGETS:
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        target: Target | None = getattr(module, "TARGET", None)
        if target is not None:
            found[target.name] = target
    return dict(sorted(found.items()))


def target_names() -> list[str]:
    """Names of all targets, sorted."""
    return list(registry())
