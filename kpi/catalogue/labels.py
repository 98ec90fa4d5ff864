"""The label normalisation that decides when two free-text labels are the same label."""

from __future__ import annotations

import unicodedata


class _CharMap(dict):
    """What each character becomes, for str.translate: nothing for a combining mark, itself
    for a letter or digit, a space for anything else. Filled on first sight of a character,
    so that translate does the per-character work in C (a catalogue has 380,000 labels)."""

    def __missing__(self, code: int) -> str | None:
        ch = chr(code)
        value = None if unicodedata.category(ch)[0] == "M" else (ch if ch.isalnum() else " ")
        self[code] = value
        return value


_CHARS = _CharMap()


def normalise_label(text: str) -> str:
    """The key under which free-text labels are compared and grouped.

    A label that an event adds counts as new only if no ESCO label of the concept has the
    same key; proposals and translation feedback are grouped by it.

    Unicode NFKD, combining marks removed, case-folded, every character that is not a letter
    or digit replaced by a space, runs of spaces collapsed, trimmed.
    """
    # Case-folding can itself produce decomposable characters, hence NFKD on both sides.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return " ".join(folded.translate(_CHARS).split())


def gendered_forms(label: str) -> list[str] | None:
    """The normalised forms of a gendered label written "form1/form2" (ESCO writes many
    preferred labels so, e.g. "Arzt/Ärztin"); None for any other label."""
    if "/" not in label:
        return None
    forms = [normalise_label(part) for part in label.split("/")]
    forms = [form for form in forms if form]
    return forms if len(forms) > 1 else None
