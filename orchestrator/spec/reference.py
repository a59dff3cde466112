"""The key reference table of docs/spec.md, generated from the spec model so it stays true.

Regenerate with `python -m orchestrator.spec.reference` and paste between the markers in
docs/spec.md (a test fails when the two differ).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from orchestrator.spec.issues import annotation_at
from orchestrator.spec.model import EnvironmentSection, SecretDeclaration, spec_model
from targets import registry

BEGIN = "<!-- reference:begin -->"
END = "<!-- reference:end -->"


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return ""
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return ""
    return "`" + json.dumps(value, default=str) + "`"


def _rows(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        annotation = annotation_at(model, (field.alias or name,))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and prefix == "":
            continue  # tables are listed key by key below
        description = (field.description or "").replace("|", "\\|")
        yield f"| `{key}` | {_default(field)} | {description} |"


def reference() -> str:
    """Markdown tables of every key, its default and its meaning."""
    model = spec_model()
    sections: list[tuple[str, type[BaseModel], str]] = [
        ("Top level", model, ""),
        ("[server]", annotation_at(model, ("server",)), "server."),
        ("[secrets.NAME]", SecretDeclaration, "secrets.NAME."),
        ("[auth]", annotation_at(model, ("auth",)), "auth."),
        ("[smoke]", annotation_at(model, ("smoke",)), "smoke."),
    ]
    for name, target in registry().items():
        sections.append((f"[targets.{name}]", target.options_model, f"targets.{name}."))
    sections.append(("[environments.NAME]", EnvironmentSection, "environments.NAME."))
    out: list[str] = [BEGIN]
    for title, section, prefix in sections:
        out += ["", f"### {title}", "", "| key | default | meaning |", "| --- | --- | --- |"]
        out += list(_rows(section, prefix))
    out += ["", END]
    return "\n".join(out)


if __name__ == "__main__":
    print(reference())
