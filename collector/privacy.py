"""Privacy at the door: free text that looks like personal data is refused, never stored.

Each check returns a short reason; the schema turns it into `personal_data: <reason>`. The
patterns are deliberately narrow where ESCO labels are legitimately technical ("ASP.NET",
"ISO 9001:2015", "Node.js") and broad where the harm is real (e-mail, phone, IBAN, long numbers).
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[^\s@<>()\[\]]+@[^\s@<>()\[\]]+\.[^\s@<>()\[\]]{2,}")
# A scheme or "www." is a URL; so is a host with a path ("example.org/jobs"). A bare
# "name.tld" is not, since many skills are named that way (Node.js, ASP.NET).
_URL = re.compile(
    r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/\S*"
)
_DIGIT_RUN = re.compile(r"\d{6,}")
# Candidates for phone numbers: digits with the separators people write them with.
_PHONE_CANDIDATE = re.compile(r"(?:\+|\b00|\()?\d[\d\s()./-]{5,}\d")
_IBAN_CANDIDATE = re.compile(r"(?i)\b[a-z]{2}\d{2}(?:[ ]?[a-z0-9]){11,30}\b")


def _looks_like_phone(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    if digits < 7 or digits > 15:
        return False
    international = candidate.startswith(("+", "00"))
    trunk = candidate.lstrip("(").startswith("0")
    # "1990 2000" or "ISO 27001 2013" are years and standards, not numbers to call.
    return international or trunk or digits >= 10


def _is_iban(candidate: str) -> bool:
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def personal_data_reason(text: str) -> str | None:
    """Why `text` looks like personal data, or None when it does not."""
    if _EMAIL.search(text):
        return "looks like an e-mail address"
    if _URL.search(text):
        return "looks like a URL"
    for match in _IBAN_CANDIDATE.finditer(text):
        if _is_iban(match.group()):
            return "looks like an IBAN"
    if any(_looks_like_phone(m.group()) for m in _PHONE_CANDIDATE.finditer(text)):
        return "looks like a phone number"
    if _DIGIT_RUN.search(text):
        return "contains a run of 6 or more digits"
    return None
