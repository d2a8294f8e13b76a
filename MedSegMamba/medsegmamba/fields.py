"""Building a dataclass from a JSON object, refusing keys it does not have."""

from __future__ import annotations

import dataclasses


def from_known_fields(cls, d: dict, what: str, noun: str = "fields"):
    """cls(**d), where a key that is not a field of cls is a ValueError naming `what`, the unknown
    keys and the allowed ones (a JSON typo must not pass silently or surface as a TypeError)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{what}: unknown {noun} {unknown}; allowed: {sorted(known)}")
    return cls(**d)
