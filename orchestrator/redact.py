"""Take secret values out of text before mcp-deploy prints or records it.

A server that prints its environment puts its secrets in its own log; when mcp-deploy shows
that log (a failed deploy's tail, `logs`, a start-up error) the values it knows are replaced by
`[redacted:NAME]`, in their common encodings too: as they are, base64 (standard and URL-safe,
with or without padding), hex, URL-encoded and JSON-escaped. Values shorter than
`MIN_LENGTH` characters are left alone: replacing them would shred ordinary text.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

MIN_LENGTH = 4


def _encodings(value: str) -> set[str]:
    raw = value.encode()
    forms = {
        value,
        raw.hex(),
        raw.hex().upper(),
        quote(value, safe=""),
        json.dumps(value)[1:-1],
    }
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms.update({text, text.rstrip("=")})
    return {form for form in forms if len(form) >= MIN_LENGTH}


@dataclass(frozen=True)
class Redactor:
    """Replaces the values of `secrets` (name -> value) in text."""

    secrets: Mapping[str, str] = field(repr=False)

    def redact(self, text: str) -> tuple[str, int]:
        """`text` with every known value replaced, and how many replacements were made."""
        names: dict[str, str] = {}
        for name, value in self.secrets.items():
            if len(value) >= MIN_LENGTH:
                for form in _encodings(value):
                    names.setdefault(form, name)
        if not names or not text:
            return text, 0
        pattern = re.compile("|".join(re.escape(f) for f in sorted(names, key=len, reverse=True)))
        count = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return f"[redacted:{names[match.group(0)]}]"

        return pattern.sub(replace, text), count

    def clean(self, text: str) -> str:
        """`text` redacted, with a closing line saying how many values were taken out."""
        redacted, count = self.redact(text)
        if count:
            plural = "s" if count > 1 else ""
            redacted = (
                redacted.rstrip("\n") + f"\n[mcp-deploy redacted {count} secret value{plural}]\n"
            )
        return redacted
