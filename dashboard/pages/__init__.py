"""The dashboard's pages: each module has TITLE, PATH, `tables(data, state)` and `render`.

`tables` returns every table the page shows (as components.Table, keyed by the CSV's name);
`render` turns them into components. The download callback calls the same `tables`, so a CSV
holds exactly what the page shows for the same URL.
"""

from __future__ import annotations

from types import ModuleType

from dashboard.pages import (
    collections,
    concept,
    concepts,
    labels,
    overview,
    proposals,
    quality,
    review,
    translations,
    uptake,
)

# In menu order; the concept page is reached from the others.
PAGES: tuple[ModuleType, ...] = (overview, concepts, collections, labels, proposals,
                                 translations, uptake, quality, review)
BY_PATH: dict[str, ModuleType] = {p.PATH: p for p in (*PAGES, concept)}
# What the Warmer prepares (dashboard.callbacks.warm_view): the memoised pages, which it renders
# ahead, and the LIVE pages with a `warm` (such a page is rendered per request, its `warm`
# computes what it memoises).
WARMED: tuple[ModuleType, ...] = tuple(p for p in PAGES if not getattr(p, "LIVE", False)
                                       or hasattr(p, "warm"))
