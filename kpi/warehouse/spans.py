"""A period's whole quarters, whole months and leftover days: the spans the macros of
sql/macros/span_rows.sql read it from, computed here once per query.

The macros take each period as one STRUCT parameter (`$period`, `$previous`, `$periods`)
holding these bounds. DuckDB plans a table macro anew at every use, and working the bounds out
there (date_trunc and intervals, a dozen times per use) was about half of planning one: 6.1-6.6
ms for two_span_rows, against 3.5-3.7 ms with the bounds given (bench/RESULTS.md).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

# the struct parameters a query may name, and the dates of the query's parameters they span
SPAN_PARAMETERS: dict[str, tuple[str, str]] = {
    "period": ("start", "end"),
    "previous": ("prev_start", "prev_end"),
    "periods": ("prev_start", "end"),  # both periods together
}


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def span_bounds(start: date, end: date) -> dict[str, Any]:
    """The bounds of the period start..end (inclusive) as span_rows reads it:

    from_day, to_day: the period itself;
    quarters_from, quarters_to: its whole quarters, from the first quarter starting on or after
        `start` to the last day of the last quarter ending on or before `end` (from > to: none);
    months_from, months_to: its whole months, likewise;
    has_quarters: whether it holds a whole quarter;
    has_months: whether it holds a whole month outside its whole quarters;
    has_days: whether it holds a day outside its whole months.
    """
    months_from = start if start.day == 1 else _next_month(start)
    months_to = _month_start(end + timedelta(days=1)) - timedelta(days=1)
    quarter = _quarter_start(start)
    quarters_from = start if quarter == start else _quarter_start(quarter + timedelta(days=92))
    quarters_to = _quarter_start(end + timedelta(days=1)) - timedelta(days=1)
    return {
        "from_day": start, "to_day": end,
        "quarters_from": quarters_from, "quarters_to": quarters_to,
        "months_from": months_from, "months_to": months_to,
        "has_quarters": quarters_from <= quarters_to,
        "has_months": months_from <= months_to and (months_from < quarters_from
                                                    or months_to > quarters_to),
        "has_days": start < months_from or end > months_to,
    }


def with_spans(params: dict[str, Any], used: frozenset[str] | set[str]) -> dict[str, Any]:
    """`params` with the span structs among `used` (the query's parameters) added from its
    dates, and without the parameters the query does not name (DuckDB refuses those)."""
    out = {name: value for name, value in params.items() if name in used}
    for name, (first, last) in SPAN_PARAMETERS.items():
        if name in used and name not in out:
            out[name] = span_bounds(params[first], params[last])
    return out
