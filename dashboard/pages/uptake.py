"""Uptake: active implementers by country and sector, and the ESCO versions they use."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard.components import Table, graph, grid, hbar, section
from dashboard.data import Data
from dashboard.state import FilterState

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
    return [
        html.Div(className="two-columns", children=[
            section("Active implementers by country", "implementer_uptake",
                    graph("uptake_country", hbar(
                        [r["value"] or "unknown" for r in by["country"]],
                        [r["active_implementers"] for r in by["country"]],
                        uris=[f"country={r['value']}" for r in by["country"]],
                        value_name="active implementers")),
                    note="Click a bar to filter by that country."),
            section("Active implementers by sector", "implementer_uptake",
                    graph("uptake_sector", hbar(
                        [(r["value"] or "unknown").replace("_", " ") for r in by["sector"]],
                        [r["active_implementers"] for r in by["sector"]],
                        uris=[f"sector={r['value']}" for r in by["sector"]],
                        value_name="active implementers")),
                    note="Click a bar to filter by that sector."),
        ]),
        section("ESCO versions in use", "esco_versions", grid("esco_versions",
                                                              t["esco_versions"])),
        section("Uptake by country and sector", "implementer_uptake",
                grid("implementer_uptake", t["implementer_uptake"])),
    ]
