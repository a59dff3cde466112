"""Did-you-mean suggestions for misspelt keys, targets and environments."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """Return the choice most similar to `word`, or None when nothing is close enough."""
    candidates = sorted(set(choices))
    lowered = {c.lower(): c for c in candidates}
    if word.lower() in lowered:
        return lowered[word.lower()]
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def hint_for(word: str, choices: Iterable[str], *, noun: str = "key") -> str:
    """A one-line hint: 'did you mean X?' when one is close, else the allowed choices."""
    options = sorted(set(choices))
    match = closest(word, options)
    if match is not None:
        return f"did you mean '{match}'?"
    if not options:
        return f"no {noun}s are allowed here"
    listed = ", ".join(options)
    return f"allowed {noun}s: {listed}"
