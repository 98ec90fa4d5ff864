"""Data quality: rejected, quarantined and flagged events by implementer and reason."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import plotly.graph_objects as go

from dashboard.components import PALETTE, Table, chart, figure, grid, plotly_text, section
from dashboard.data import Data
from dashboard.state import FilterState

TITLE = "Data quality"
PATH = "quality"

# The outcomes drawn, in order; a flagged event was counted, with a problem worth knowing.
OUTCOMES = ("rejected", "quarantined", "flagged")
# Reasons that read better in words than as the stored code.
PLAIN = {("flagged", "esco_version_mismatch"):
         "counted, but the named ESCO version lacks the concept"}


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    r = data.indicator("data_quality", state.period(), state)
    totals: dict[tuple, dict[str, Any]] = defaultdict(lambda: {"events": 0,
                                                                "still_quarantined": 0})
    for row in r.rows:
        key = (row["implementer_id"], row["implementer"], row["country"], row["sector"],
               row["outcome"], row["reason"])
        totals[key]["events"] += row["events"]
        totals[key]["still_quarantined"] += row["still_quarantined"] or 0
    summary = [dict(zip(("implementer_id", "implementer", "country", "sector", "outcome",
                         "reason"), k, strict=True)) | v for k, v in totals.items()]
    for s in summary:
        s["meaning"] = _label(s["outcome"], s["reason"])
    summary.sort(key=lambda s: (-s["events"], s["implementer_id"] or 0, s["outcome"],
                                s["reason"]))
    return {
        "data_quality_summary": Table(
            "Problems by implementer and reason",
            ("implementer_id", "implementer", "country", "sector", "outcome", "reason",
             "meaning", "events", "still_quarantined"), summary),
        "data_quality": Table("Rejected, quarantined and flagged events by day", r.columns,
                              r.rows),
    }


def _label(outcome: str, reason: str) -> str:
    """How a chart or table names an outcome and reason."""
    return PLAIN.get((outcome, reason), f"{outcome}: {reason}")


def _reasons(summary: list[dict]) -> list[tuple[str, str, int]]:
    """Events per outcome and reason, most first: what the chart draws."""
    reasons: dict[tuple[str, str], int] = defaultdict(int)
    for s in summary:
        reasons[(s["outcome"], s["reason"])] += s["events"]
    return sorted(((o, r, n) for (o, r), n in reasons.items()), key=lambda x: (-x[2], x[:2]))


def _figure(summary: list[dict]) -> go.Figure | None:
    if not summary:
        return None
    reasons = {(o, r): n for o, r, n in _reasons(summary)}
    bars = []
    # outcome is told by the bar's pattern and the legend's words, not by colour alone
    for i, outcome in enumerate(OUTCOMES):
        items = sorted(((r, n) for (o, r), n in reasons.items() if o == outcome),
                       key=lambda x: x[1])
        if items:
            bars.append({
                "type": "bar", "y": [plotly_text(_label(outcome, r)[:70]) for r, _ in items],
                "x": [n for _, n in items], "orientation": "h", "name": outcome,
                "marker": {"color": PALETTE[i], "pattern": {"shape": ("", "/", ".")[i]}},
                "text": [f"{n:,}" for _, n in items], "textposition": "outside",
                "textangle": 0, "cliponaxis": False})
    return figure(bars, max(240, 26 * len(reasons) + 80),
                  yaxis={"automargin": True, "type": "category"},
                  xaxis={"title": {"text": "events"}})


def render(data: Data, state: FilterState) -> list[Any]:
    t = tables(data, state)
    summary = t["data_quality_summary"].rows
    return [
        section("Problems by reason", "data_quality_summary",
                chart("quality_reasons", _figure(summary), title="Rejected, quarantined and "
                      "flagged events by reason", headers=("outcome", "reason", "events"),
                      rows=_reasons(summary), noun="reasons"),
                note="By day of receipt. Rejected events were never stored; quarantined ones "
                     "wait for a catalogue that knows their concept or version; flagged ones "
                     "were counted, but the ESCO version they name lacks their concept."),
        section("By implementer and reason", "data_quality_summary",
                grid("data_quality_summary", t["data_quality_summary"])),
        section("By day", "data_quality", grid("data_quality", t["data_quality"])),
    ]
