"""The label normalisation that decides when two free-text labels are the same label."""

from __future__ import annotations

import unicodedata


def normalise_label(text: str) -> str:
    """The key under which free-text labels are compared and grouped.

    A label that an event adds counts as new only if no ESCO label of the concept has the
    same key; proposals and translation feedback are grouped by it.

    Unicode NFKD, combining marks removed, case-folded, every character that is not a letter
    or digit replaced by a space, runs of spaces collapsed, trimmed.
    """
    # Case-folding can itself produce decomposable characters, hence NFKD on both sides.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    chars = [
        ch if ch.isalnum() else " "
        for ch in folded
        if not unicodedata.category(ch).startswith("M")
    ]
    return " ".join("".join(chars).split())
