"""Turn pydantic validation errors into `Issue`s a person can act on.

Each error gets the dotted key path as written in the file, a plain message, and a hint:
did-you-mean for an unknown key, the allowed values for an enum, an example for a format.
Input values are never echoed (a misplaced secret value must not reach a terminal or CI log).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from orchestrator.errors import Issue
from orchestrator.suggest import closest, hint_for

Loc = tuple[str | int, ...]
IssueFactory = Callable[[Loc, str, str | None], Issue]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(parts: Sequence[str | int]) -> str:
    """`('targets', 'lambda', 'memory')` → `targets.lambda.memory`; odd keys are quoted."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if _BARE_KEY.match(part) else '"' + part.replace('"', '\\"') + '"'
        out += ("." if out else "") + text
    return out


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional around a type."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _field_by_key(model: type[BaseModel], key: str | int) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field.annotation
    return None


def annotation_at(model: type[BaseModel], loc: Loc) -> Any:
    """The type expected at `loc` inside `model`, or None when the path leaves the model."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = _field_by_key(annotation, part)
        elif origin is dict:
            annotation = get_args(annotation)[1]
        elif origin is list:
            annotation = get_args(annotation)[0]
        else:
            return None
        if annotation is None:
            return None
    return _unwrap(annotation)


def allowed_keys(model: type[BaseModel], table: Loc) -> list[str]:
    """Keys allowed in the table at `table`, by their spelling in the file."""
    annotation = annotation_at(model, table)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [field.alias or name for name, field in annotation.model_fields.items()]
    return []


def _literal_values(model: type[BaseModel], loc: Loc) -> list[str]:
    annotation = annotation_at(model, loc)
    if get_origin(annotation) is Literal:
        return [str(value) for value in get_args(annotation)]
    return []


def _field_help(model: type[BaseModel], loc: Loc) -> tuple[list[Any], str | None]:
    """The examples and description of the field at `loc` (empty when unknown)."""
    parent = annotation_at(model, loc[:-1]) if loc else None
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
        return [], None
    for name, field in parent.model_fields.items():
        if loc[-1] in (name, field.alias):
            examples = list(field.examples or [])
            description = field.description
            for meta in field.metadata:
                examples.extend(getattr(meta, "examples", None) or [])
                description = description or getattr(meta, "description", None)
            return examples, description
    return [], None


def _describe(error: ErrorDetails, model: type[BaseModel], loc: Loc) -> tuple[str, str | None]:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        return "unknown key", hint_for(key, allowed_keys(model, loc[:-1]))
    if kind == "missing":
        examples, description = _field_help(model, loc)
        hint = f"for example: {loc[-1]} = {examples[0]!r}" if examples and loc else description
        return "missing required key", hint
    if kind == "literal_error":
        allowed = _literal_values(model, loc)
        value = error.get("input")
        message = "must be one of: " + ", ".join(repr(a) for a in allowed)
        if not isinstance(value, str) and str(value) in allowed:
            return message, f'write it as a string, with quotes: "{value}"'
        if isinstance(value, str):
            match = closest(value, allowed)
            if match is not None:
                return message, f"did you mean '{match}'?"
        return message, None
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a table ([section] or { key = value })", None
    if kind == "string_pattern_mismatch":
        examples, description = _field_help(model, loc)
        hint = f"for example: {examples[0]!r}" if examples else description
        return f"has the wrong format (expected to match {error['ctx']['pattern']})", hint
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:], None


def issues_from_validation(
    exc: ValidationError, model: type[BaseModel], make_issue: IssueFactory
) -> list[Issue]:
    """One `Issue` per validation error, in file order of their paths."""
    issues: list[Issue] = []
    seen: set[tuple[Loc, str]] = set()
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        about_key = bool(loc) and loc[-1] == "[key]"
        if about_key:
            loc = loc[:-1]
        message, hint = _describe(error, model, loc)
        if about_key:
            message = "invalid name: " + message
        if (loc, message) in seen:
            continue
        seen.add((loc, message))
        issues.append(make_issue(loc, message, hint))
    return issues
