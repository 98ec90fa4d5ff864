"""A period's whole quarters, whole months and leftover days: the spans the macros of
sql/macros/span_rows.sql read it from, computed here once per query. For two_span_rows, which
only sums, also the months read as their sums less a few days (complemented months).

The macros take each period as one STRUCT parameter (`$period`, `$previous`) holding these
bounds. DuckDB plans a table macro anew at every use, and working the bounds out there
(date_trunc and intervals, a dozen times per use) was about half of planning one: 6.1-6.6 ms
for two_span_rows, against 3.5-3.7 ms with the bounds given (bench/RESULTS.md).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

# the struct parameters a query may name, and the dates of the query's parameters they span
SPAN_PARAMETERS: dict[str, tuple[str, str]] = {
    "period": ("start", "end"),
    "previous": ("prev_start", "prev_end"),
}


# A month the period covers all but at most this many days of is read as its sums less those
# days (two_span_rows): a month's sums hold about half as many rows as its days, so taking out
# more days costs more than reading the days the period covers (at 10 M events, for
# concept_trends: September, whose previous period is 2-31 August, 155 -> 135 ms; 10-25
# September, 14 days out, 128 -> 168 ms).
MAX_DAYS_OUT = 7
# an empty range of days, and a month that is none
_NO_DAY_FROM, _NO_DAY_TO = date(9999, 12, 31), date(1, 1, 1)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _month_end(day: date) -> date:
    return next_month(day) - timedelta(days=1)


def span_bounds(start: date, end: date, today: date | None = None) -> dict[str, Any]:
    """The bounds of the period start..end (inclusive) as span_rows reads it:

    from_day, to_day: the period itself;
    quarters_from, quarters_to: its whole quarters, from the first quarter starting on or after
        `start` to the last day of the last quarter ending on or before `end` (from > to: none);
    months_from, months_to: its whole months, likewise;
    has_quarters: whether it holds a whole quarter;
    has_months: whether it holds a whole month outside its whole quarters;
    has_days: whether it holds a day outside its whole months.

    And as two_span_rows reads it, where a month that ended before `today`'s (UTC by default)
    and that the period covers all but at most MAX_DAYS_OUT days of is read as its sums less
    the other days (complemented): complemented_first, complemented_last (the first days of
    its first and last months when complemented, else a day that is no month's); plain_from,
    plain_to (the days read as days, outside the whole months); out1_from..out1_to and
    out2_from..out2_to (the days taken out, before the period in its first month and after it
    in its last; from > to: none); has_plain_days, has_days_out; has_span_months (has_months,
    or a complemented month).
    """
    months_from = start if start.day == 1 else next_month(start)
    months_to = _month_start(end + timedelta(days=1)) - timedelta(days=1)
    quarter = _quarter_start(start)
    quarters_from = start if quarter == start else _quarter_start(quarter + timedelta(days=92))
    quarters_to = _quarter_start(end + timedelta(days=1)) - timedelta(days=1)
    has_months = months_from <= months_to and (months_from < quarters_from
                                               or months_to > quarters_to)
    current_month = _month_start(today or datetime.now(UTC).date())

    def complemented(month: date) -> bool:
        """Whether the period's first or last month is read as its sums less a few days."""
        first, last = max(start, month), min(end, _month_end(month))
        whole = first == month and last == _month_end(month)
        days_out = (_month_end(month) - month).days - (last - first).days
        return month < current_month and not whole and days_out <= MAX_DAYS_OUT

    first_month, last_month = _month_start(start), _month_start(end)
    head, tail = complemented(first_month), complemented(last_month)
    return {
        "from_day": start, "to_day": end,
        "quarters_from": quarters_from, "quarters_to": quarters_to,
        "months_from": months_from, "months_to": months_to,
        "has_quarters": quarters_from <= quarters_to,
        "has_months": has_months,
        "has_days": start < months_from or end > months_to,
        "complemented_first": first_month if head else _NO_DAY_TO,
        "complemented_last": last_month if tail else _NO_DAY_TO,
        "plain_from": next_month(start) if head else start,
        "plain_to": last_month - timedelta(days=1) if tail else end,
        "out1_from": first_month if head else _NO_DAY_FROM,
        "out1_to": start - timedelta(days=1) if head else _NO_DAY_TO,
        "out2_from": end + timedelta(days=1) if tail else _NO_DAY_FROM,
        "out2_to": _month_end(end) if tail else _NO_DAY_TO,
        "has_plain_days": (start < months_from and not head) or (end > months_to and not tail),
        "has_days_out": (head and start > first_month) or (tail and end < _month_end(end)),
        "has_span_months": has_months or head or tail,
    }


def with_spans(params: dict[str, Any], used: frozenset[str] | set[str]) -> dict[str, Any]:
    """`params` with the span structs among `used` (the query's parameters) added from its
    dates, and without the parameters the query does not name (DuckDB refuses those)."""
    out = {name: value for name, value in params.items() if name in used}
    for name, (first, last) in SPAN_PARAMETERS.items():
        if name in used and name not in out:
            out[name] = span_bounds(params[first], params[last])
    return out
