"""AWS Lambda behind a Function URL: the target is defined in `target.py`.

This package init imports nothing itself, so the local emulator's background supervisor
(`python -m targets.aws_lambda.supervisor`) starts without loading pydantic: its start-up is
part of every local cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from targets.aws_lambda.target import TARGET, LambdaOptions, LambdaTarget

__all__ = ["TARGET", "LambdaOptions", "LambdaTarget"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from targets.aws_lambda import target

        return getattr(target, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
