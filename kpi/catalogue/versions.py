"""ESCO version numbers ("1.2.0"): which strings are one, and their numeric order."""

from __future__ import annotations

import re
from functools import lru_cache

# Digits and dots, two or three parts: 1.2, 1.2.0, 1.10.2.
VERSION_NUMBER = re.compile(r"\d+(\.\d+){1,2}")


def is_version(value: object) -> bool:
    """Whether `value` is a version number like 1.2.0."""
    return isinstance(value, str) and VERSION_NUMBER.fullmatch(value) is not None


# The collector compares each event's esco_version: a few distinct values, parsed once.
@lru_cache(maxsize=1024)
def version_key(v: str) -> tuple[int, ...]:
    """`"1.10.2"` -> `(1, 10, 2)`, for sorting versions numerically."""
    return tuple(int(part) for part in v.split("."))
