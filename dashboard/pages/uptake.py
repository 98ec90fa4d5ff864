"""Uptake: active implementers by country and sector, and the ESCO releases they declare."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard.components import Table, bar_chart, chart, fmt_number, grid, grouped_bars, section
from dashboard.data import Data
from dashboard.state import FilterState, target_href

TITLE = "Uptake"
PATH = "uptake"
MONTHLY = "release_uptake_monthly"
RELEASES = "release_uptake"


def release_kind(row: dict[str, Any]) -> str:
    """Where a declared release stands against the current one, in words."""
    if row["older"] is None:
        return "not a release number"
    if not row["older"]:
        return "current" if row["esco_version"] == row["current_version"] else "newer"
    return "older, loaded" if row["loaded"] else "older, not loaded"


def release_tables(data: Data, state: FilterState) -> dict[str, Table]:
    """The releases active implementers declare: per month, and over the period."""
    rows = data.release_uptake(state.period(), state).rows
    part = {s: [r for r in rows if r["section"] == s] for s in ("month", "release", "latest")}
    latest = {r["esco_version"]: r["implementers"] for r in part["latest"]}
    return {
        MONTHLY: Table(
            "Active implementers by declared ESCO release, per month",
            ("month", "esco_version", "implementers", "events"),
            [{"month": r["bucket"], "esco_version": r["esco_version"],
              "implementers": r["implementers"], "events": r["events"]}
             for r in part["month"]]),
        RELEASES: Table(
            "Implementers by declared ESCO release",
            ("esco_version", "release", "implementers", "events", "latest_implementers"),
            [{"esco_version": r["esco_version"], "release": release_kind(r),
              "implementers": r["implementers"], "events": r["events"],
              "latest_implementers": latest.get(r["esco_version"], 0)}
             for r in part["release"]]),
    }


def older_line(data: Data, state: FilterState) -> tuple[int, int, str | None]:
    """(implementers whose last active day declared a release older than the current one,
    active implementers, the current release)."""
    rows = [r for r in data.release_uptake(state.period(), state).rows
            if r["section"] == "latest"]
    older = sum(r["implementers"] for r in rows if r["older"])
    return older, sum(r["implementers"] for r in rows), data.current_release()


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    data.prefetch(lambda: data.release_uptake(state.period(), state),
                  lambda: data.indicator("implementer_uptake", state.period(), state))
    r = data.indicator("implementer_uptake", state.period(), state)
    versions: dict[str, set] = {}
    for row in r.rows:
        if row["dimension"] == "country":
            for v in row["esco_versions"] or []:
                versions.setdefault(v, set()).add(row["value"])
    return {
        "implementer_uptake": Table("Implementer uptake", r.columns, r.rows),
        "esco_versions": Table(
            "ESCO versions in use", ("esco_version", "countries"),
            [{"esco_version": v, "countries": sorted(c for c in cs if c)}
             for v, cs in sorted(versions.items())]),
        **release_tables(data, state),
    }


def release_chart(table: Table) -> Any:
    """Active implementers per month, a bar per declared release (newest first), through
    `chart`: its table lists every month and release."""
    rows = table.rows
    months = sorted({r["month"] for r in rows})
    versions = list(dict.fromkeys(r["esco_version"] for r in rows))  # newest first (the SQL)
    found = {(r["month"], r["esco_version"]): r["implementers"] for r in rows}
    series = {v: [found.get((m, v), 0) for m in months] for v in versions}
    fig = grouped_bars([f"{m:%b %Y}" for m in months], series,
                       value_name="active implementers", series_name="ESCO release")
    peaks = "; ".join(f"{v}: up to {fmt_number(max(series[v]))}" for v in versions)
    span = (f"{months[0]:%b %Y}" if len(months) == 1 else
            f"{months[0]:%b %Y} to {months[-1]:%b %Y}") if months else ""
    return chart("release_uptake", fig, title="Active implementers by declared ESCO release, "
                 "per month", headers=("month", "ESCO release", "active implementers"),
                 rows=[(r["month"], r["esco_version"], r["implementers"]) for r in rows],
                 summary=f"{len(versions)} release{'s' if len(versions) != 1 else ''} "
                         f"declared, {span}; active implementers per month: {peaks}.")


def render(data: Data, state: FilterState) -> list[Any]:
    t = tables(data, state)
    rows = t["implementer_uptake"].rows
    by = {d: sorted((r for r in rows if r["dimension"] == d),
                    key=lambda r: (-r["active_implementers"], str(r["value"])))
          for d in ("country", "sector")}
    def by_chart(dimension: str) -> Any:
        found = by[dimension]
        uris = [f"{dimension}={r['value']}" for r in found]
        return bar_chart(
            f"uptake_{dimension}", f"Active implementers by {dimension}",
            [(r["value"] or "unknown").replace("_", " ") for r in found],
            [r["active_implementers"] for r in found], label_name=dimension,
            value_name="active implementers", uris=uris,
            noun="countries" if dimension == "country" else "sectors",
            links=[target_href(state, PATH, u) for u in uris],
            link_note=f"the links filter by that {dimension}")

    return [
        html.Div(className="two-columns", children=[
            section("Active implementers by country", "implementer_uptake", by_chart("country"),
                    note="Click a bar, or a country in the data table, to filter by it."),
            section("Active implementers by sector", "implementer_uptake", by_chart("sector"),
                    note="Click a bar, or a sector in the data table, to filter by it."),
        ]),
        release_section(data, state, t),
        section("Implementers by declared ESCO release", RELEASES, grid(RELEASES, t[RELEASES]),
                note="Implementers: active in the period declaring the release; latest "
                     "implementers: those whose last active day in the period declared it."),
        section("ESCO versions in use", "esco_versions", grid("esco_versions",
                                                              t["esco_versions"])),
        section("Uptake by country and sector", "implementer_uptake",
                grid("implementer_uptake", t["implementer_uptake"])),
    ]


def release_section(data: Data, state: FilterState, t: dict[str, Table]) -> Any:
    """The releases implementers declare: how many still declare an older one than the
    current release, and the monthly chart."""
    older, active, current = older_line(data, state)
    words = [html.Strong(f"{fmt_number(older)} of {fmt_number(active)} active implementers"),
             f" still declare{'s' if older == 1 else ''} a release older than ESCO {current}, "
             "the current release "
             "(the release their events named on their last active day in the period)."]
    if not current:
        words = ["No ESCO release is loaded."]
    return section("Active implementers by declared ESCO release", MONTHLY,
                   html.P(words, id="older-releases", className="release-notice"),
                   release_chart(t[MONTHLY]),
                   note="Each event names the ESCO release its implementer works with. An "
                        "implementer declaring two releases in a month counts under both.")
