"""The dashboard's filter state: one period and the global filters, kept in the URL.

Everything a page shows is a function of its path and this state, so a copied link shows
exactly the same thing. Unknown or malformed query values fall back to the defaults instead
of failing: a hand-edited link still opens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlencode

from dashboard import PREFIX
from kpi.review.decisions import STATUSES
from kpi.review.items import ITEM_ID, KINDS
from kpi.vocabulary import CONCEPT_TYPES, CONCEPT_URI, CONTEXTS, COUNTRY_CODE, LANGUAGES, SECTORS
from kpi.warehouse.indicators import Period

PRESETS: dict[str, str] = {
    "last30": "Last 30 days",
    "this_quarter": "This quarter",
    "last_quarter": "Last quarter",
    "custom": "Custom",
}
DEFAULT_PRESET = "last30"
# The global filters, in the order they appear in the URL and in file names.
FILTER_NAMES = ("concept_type", "language", "country", "sector", "context")
# The Review page's own filters, after the global ones in the URL and in file names; `item`
# shows one item of the queue (a link from another page).
REVIEW_FILTERS = ("kind", "status", "item")
_ALLOWED: dict[str, tuple[str, ...]] = {
    "concept_type": CONCEPT_TYPES,
    "language": LANGUAGES,
    "sector": SECTORS,
    "context": CONTEXTS,
}


def today() -> date:
    """The UTC date: events are stored by UTC day."""
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class FilterState:
    """What the user chose; `None` means all."""

    preset: str = DEFAULT_PRESET
    start: date | None = None  # only for preset "custom"
    end: date | None = None
    concept_type: str | None = None
    language: str | None = None
    country: str | None = None
    sector: str | None = None
    context: str | None = None
    label_language: str = "en"
    concept: str | None = None  # the concept page's concept URI
    # the Review page's own filters (URL keys `kind`, `status`, `item`); None means all
    kind: str | None = None
    status: str | None = None
    item: str | None = None  # one review item's id

    def period(self, now: date | None = None) -> Period:
        """The inclusive range of days the preset stands for (relative to `now`)."""
        return resolve_period(self.preset, self.start, self.end, now or today())

    def filters(self) -> dict[str, str | None]:
        """The global filters as kpi.warehouse.indicators.query keyword arguments."""
        return {name: getattr(self, name) for name in FILTER_NAMES}

    def with_(self, **changes: object) -> FilterState:
        return replace(self, **changes)


def resolve_period(preset: str, start: date | None, end: date | None, now: date) -> Period:
    """Turn a preset (or custom dates) into a Period."""
    if preset == "custom" and start and end:
        return Period.custom(min(start, end), max(start, end))
    if preset == "this_quarter":
        return Period.custom(Period.quarter(now).start, now)
    if preset == "last_quarter":
        return Period.quarter(Period.quarter(now).start - timedelta(days=1))
    return Period.custom(now - timedelta(days=29), now)


def _date_or_none(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def clean_filter(name: str, value: object) -> str | None:
    """A filter value if it is one the indicators accept, else None (= all)."""
    if not isinstance(value, str) or not value:
        return None
    if name == "country":
        value = value.strip().upper()
        return value if COUNTRY_CODE.fullmatch(value) else None
    return value if value in _ALLOWED[name] else None


def parse_query(search: str | None) -> FilterState:
    """The state a URL query string (with or without its leading '?') stands for."""
    args = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items() if v}
    preset = args.get("period", DEFAULT_PRESET)
    if preset not in PRESETS:
        preset = DEFAULT_PRESET
    start, end = _date_or_none(args.get("start")), _date_or_none(args.get("end"))
    if preset == "custom" and not (start and end):
        preset = DEFAULT_PRESET
    if preset != "custom":
        start = end = None
    label_language = args.get("labels", "en")
    concept = args.get("concept")
    kind, status, item = args.get("kind"), args.get("status"), args.get("item")
    return FilterState(
        kind=kind if kind in KINDS else None, status=status if status in STATUSES else None,
        item=item if item and ITEM_ID.fullmatch(item) else None,
        preset=preset, start=start, end=end,
        label_language=label_language if label_language in LANGUAGES else "en",
        concept=concept if concept and CONCEPT_URI.fullmatch(concept) else None,
        **{name: clean_filter(name, args.get(name)) for name in FILTER_NAMES},
    )


def to_query(state: FilterState) -> str:
    """The URL query string (with '?', or '' for all defaults) that parse_query reads back."""
    pairs: list[tuple[str, str]] = []
    if state.preset != DEFAULT_PRESET:
        pairs.append(("period", state.preset))
    if state.preset == "custom" and state.start and state.end:
        pairs += [("start", state.start.isoformat()), ("end", state.end.isoformat())]
    pairs += [(name, getattr(state, name)) for name in FILTER_NAMES if getattr(state, name)]
    if state.label_language != "en":
        pairs.append(("labels", state.label_language))
    if state.concept:
        pairs.append(("concept", state.concept))
    pairs += [(name, getattr(state, name)) for name in REVIEW_FILTERS if getattr(state, name)]
    return "?" + urlencode(pairs) if pairs else ""


def target_href(state: FilterState, path: str, target: object) -> str | None:
    """Where a chart's bar leads from page `path` (under /dashboard/), as a link: a concept
    URI opens its concept page, "country=DE" (or another filter) sets that filter on the same
    page; the period and the other filters stay. None for anything else."""
    if not isinstance(target, str):
        return None
    if CONCEPT_URI.fullmatch(target):
        return f"{PREFIX}concept{to_query(state.with_(concept=target))}"
    name, _, value = target.partition("=")
    if name not in FILTER_NAMES or clean_filter(name, value) is None:
        return None
    return f"{PREFIX}{path}{to_query(state.with_(**{name: clean_filter(name, value)}))}"


def csv_filename(table: str, state: FilterState, now: date | None = None) -> str:
    """E.g. most_used_concepts_2026-07-01_2026-09-30_country-DE.csv: the period and filters."""
    period = state.period(now)
    parts = [table, period.start.isoformat(), period.end.isoformat()]
    parts += [f"{name}-{getattr(state, name)}" for name in FILTER_NAMES if getattr(state, name)]
    if state.concept:
        parts.append("concept-" + state.concept.rsplit("/", 1)[-1])
    parts += [f"{name}-{getattr(state, name)}" for name in REVIEW_FILTERS
              if getattr(state, name)]
    # every part is from a closed vocabulary or checked above; keep the name safe regardless
    return re.sub(r"[^A-Za-z0-9._-]", "_", "_".join(parts)) + ".csv"
