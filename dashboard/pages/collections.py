"""Collections: ESCO's skill collections (green, digital, digComp, transversal, language,
research) and the research occupations collection: each one's share of usage, the green and
digital shares by country (the twin transition), and how much of each collection is used."""

from __future__ import annotations

from typing import Any

from dashboard.components import (
    Table,
    bar_chart,
    chart,
    fmt_number,
    grid,
    grouped_bars,
    hbar,
    section,
)
from dashboard.data import Data
from dashboard.state import FilterState, target_href

TITLE = "Collections"
PATH = "collections"
# The twin transition's collections, compared country by country.
TWIN = ("green", "digital")
ALL_COUNTRIES = "all"
OVERALL = "collections"
BY_COUNTRY = "collections_by_country"
TWIN_TABLE = "twin_transition_by_country"
COLUMNS = ("collection", "country", "base_type", "usage", "base_usage", "share",
           "implementers", "base_implementers", "concepts", "used", "coverage",
           "collection_version")


def collection_name(row: dict[str, Any]) -> str:
    """A collection as the charts name it; one measured against occupations says so."""
    name = row["collection"].replace("_", " ")
    return name if row["base_type"] == "skill" else f"{name} (of {row['base_type']} usage)"


def percent(share: float | None) -> float | None:
    """A share (0..1) as a percentage rounded to 0.01, what the charts draw."""
    return None if share is None else round(100 * share, 2)


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    result = data.indicator("collection_usage", state.period(), state)
    # the all-countries rows carry no country in the indicator: named here, in the CSV too
    rows = [{**r, "country": r["country"] or ALL_COUNTRIES} for r in result.rows]
    overall = [r for r in rows if r["country"] == ALL_COUNTRIES]
    countries = [r for r in rows if r["country"] != ALL_COUNTRIES]
    twin: dict[str, dict[str, Any]] = {}
    for r in countries:
        if r["collection"] in TWIN and r["base_type"] == "skill":
            found = twin.setdefault(r["country"], {"country": r["country"],
                                                   "skill_usage": r["base_usage"]})
            found[f"{r['collection']}_usage"] = r["usage"]
            found[f"{r['collection']}_share"] = r["share"]
    twin_columns = ("country", "skill_usage", *(f"{c}_{f}" for c in TWIN
                                                for f in ("usage", "share")))
    return {
        OVERALL: Table("Collections, all countries", COLUMNS, overall,
                       grid_columns=tuple(c for c in COLUMNS if c != "country")),
        TWIN_TABLE: Table("Green and digital shares of skill usage by country", twin_columns,
                          [{c: t.get(c) for c in twin_columns} for _, t in sorted(twin.items())]),
        BY_COUNTRY: Table("Collections by country", COLUMNS, countries),
    }


def share_chart(rows: list[dict[str, Any]]) -> Any:
    shown = sorted((r for r in rows if r["share"] is not None),
                   key=lambda r: (-r["share"], r["collection"]))
    return bar_chart("collection_shares", "Share of usage by collection",
                     [collection_name(r) for r in shown], [percent(r["share"]) for r in shown],
                     label_name="collection", value_name="% of usage", noun="collections")


def coverage_chart(rows: list[dict[str, Any]]) -> Any:
    shown = sorted(rows, key=lambda r: (-r["coverage"], r["collection"]))
    names = [r["collection"].replace("_", " ") for r in shown]
    values = [percent(r["coverage"]) for r in shown]
    # every collection in words: a handful, and equal shares read better than "highest"
    summary = "; ".join(f"{n} {fmt_number(r['used'])} of {fmt_number(r['concepts'])} "
                        f"({fmt_number(v)} %)" for n, v, r in zip(names, values, shown,
                                                                 strict=True))
    return chart("collection_coverage", hbar(names, values, value_name="% of concepts used"),
                 title="Concepts of each collection used at least once",
                 headers=("collection", "% of concepts used", "concepts used", "concepts"),
                 rows=[(n, v, r["used"], r["concepts"])
                       for n, v, r in zip(names, values, shown, strict=True)],
                 summary=f"Concepts used at least once: {summary}.", noun="collections")


def _extremes(rows: list[dict[str, Any]], collection: str) -> str:
    """The countries with the highest and lowest share of one collection, in words."""
    key = f"{collection}_share"
    found = [r for r in rows if r.get(key) is not None]
    if not found:
        return f"{collection}: no usage"
    top = max(found, key=lambda r: (r[key], r["country"]))
    low = min(found, key=lambda r: (r[key], r["country"]))
    if top is low:
        return f"{collection} {fmt_number(percent(top[key]))} % in {top['country']}"
    return (f"{collection} highest in {top['country']} ({fmt_number(percent(top[key]))} %), "
            f"lowest in {low['country']} ({fmt_number(percent(low[key]))} %)")


def twin_chart(state: FilterState, rows: list[dict[str, Any]]) -> Any:
    """Green and digital shares of skill usage, a pair of bars per country with skill usage."""
    shown = [r for r in rows if r["skill_usage"]]
    names = [r["country"] for r in shown]
    series = {c: [percent(r.get(f"{c}_share")) or 0.0 for r in shown] for c in TWIN}
    fig = grouped_bars(names, series, value_name="% of skill usage", series_name="collection")
    targets = [f"country={c}" for c in names]
    if fig is not None:
        for trace in fig.data:  # a click on a bar filters by its country
            trace.customdata = targets
    summary = (f"{len(shown)} {'country' if len(shown) == 1 else 'countries'}: "
               + "; ".join(_extremes(shown, c) for c in TWIN) + ".")
    return chart("twin_transition", fig, title="Green and digital shares of skill usage "
                 "by country", headers=("country", *(f"{c} (% of skill usage)" for c in TWIN),
                                        "skill usage"),
                 rows=[(r["country"], *(percent(r.get(f"{c}_share")) for c in TWIN),
                        r["skill_usage"]) for r in shown],
                 links=[target_href(state, PATH, t) for t in targets],
                 link_note="the links filter by that country", summary=summary, noun="countries")


def render(data: Data, state: FilterState) -> list[Any]:
    t = tables(data, state)
    overall = t[OVERALL].rows
    return [
        section("Share of usage by collection", OVERALL, share_chart(overall),
                note="Usage of a collection's concepts as a share of all skill usage (the "
                     "research occupations: of all occupation usage). A concept in two "
                     "collections counts in both, so the shares do not add up to 100 %."),
        section("Green and digital shares by country", TWIN_TABLE,
                twin_chart(state, t[TWIN_TABLE].rows),
                note="Click a bar, or a country in the data table, to filter by that country."),
        section("Coverage by collection", OVERALL, coverage_chart(overall),
                note="How many of each collection's concepts (in the current ESCO release) "
                     "were used at least once in the period."),
        section("Collections, all countries", OVERALL, grid(OVERALL, t[OVERALL])),
        section("Collections by country", BY_COUNTRY, grid(BY_COUNTRY, t[BY_COUNTRY]),
                note="Every collection for each country with concept usage in the period; "
                     "share: of the country's skill (or occupation) usage."),
    ]
