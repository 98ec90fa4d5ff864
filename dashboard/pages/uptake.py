"""Uptake: active implementers by country and sector, and the ESCO versions they use."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard.components import Table, bar_chart, grid, section
from dashboard.data import Data
from dashboard.state import FilterState, target_href

TITLE = "Uptake"
PATH = "uptake"


def tables(data: Data, state: FilterState) -> dict[str, Table]:
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
    }


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
        section("ESCO versions in use", "esco_versions", grid("esco_versions",
                                                              t["esco_versions"])),
        section("Uptake by country and sector", "implementer_uptake",
                grid("implementer_uptake", t["implementer_uptake"])),
    ]
