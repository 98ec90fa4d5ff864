"""The KPI indicators: one SQL file per indicator under sql/, run against the warehouse.

    from kpi.warehouse.indicators import Period, query
    result = query(settings, "most_used_concepts", Period.quarter("2026-Q3"), language="de")
    result.columns, result.rows  # rows are dicts

Every SQL file takes `$start` and `$end` (inclusive dates) and the optional filters it can
apply (`$concept_type`, `$language`, `$country`, `$sector`, `$context`, for data_quality
`$implementer_id`, for candidate_alt_labels and translation_feedback `$concept_uri`; NULL =
all); most_used_concepts and concept_trends also `$prev_start`/`$prev_end` (filled in from
`period.previous()`), and the concept indicators `$label_language`. Values are always bound as
DuckDB parameters, never formatted into the SQL.
"""

from __future__ import annotations

import calendar
import heapq
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, overload

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from kpi.settings import Settings
from kpi.vocabulary import CONCEPT_TYPES, CONCEPT_URI, CONTEXTS, COUNTRY_CODE, LANGUAGES, SECTORS
from kpi.warehouse import models
from kpi.warehouse.spans import with_spans

INDICATORS: tuple[str, ...] = (
    "most_used_concepts",
    "least_used_concepts",
    "catalogue_coverage",
    "candidate_alt_labels",
    "new_concept_proposals",
    "translation_feedback",
    "implementer_uptake",
    "language_usage",
    "data_quality",
    "concept_trends",
    "collection_usage",
)
FILTERS = ("concept_type", "language", "country", "sector", "context", "implementer_id",
           "concept_uri")


@dataclass(frozen=True)
class Period:
    """An inclusive range of days."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if not isinstance(self.start, date) or not isinstance(self.end, date):
            raise ValueError("a period needs a start and an end date")
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def day(cls, day: date | str) -> Period:
        d = _date(day)
        return cls(d, d)

    @classmethod
    def week(cls, week: date | str) -> Period:
        """The ISO week holding a date, or named like "2026-W27"."""
        if isinstance(week, str) and "W" in week.upper():
            m = re.fullmatch(r"(\d{4})-?W(\d{2})", week.strip().upper())
            if not m:
                raise ValueError(f"not an ISO week like 2026-W27: {week!r}")
            try:
                start = date.fromisocalendar(int(m[1]), int(m[2]), 1)
            except ValueError:
                raise ValueError(f"no such ISO week: {week!r}") from None
        else:
            d = _date(week)
            start = d - timedelta(days=d.weekday())
        return cls(start, start + timedelta(days=6))

    @classmethod
    def month(cls, month: date | str) -> Period:
        """The month holding a date, or named like "2026-07"."""
        if isinstance(month, str):
            m = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
            if not m or not 1 <= int(m[2]) <= 12:
                raise ValueError(f"not a month like 2026-07: {month!r}")
            year, mon = int(m[1]), int(m[2])
        else:
            year, mon = month.year, month.month
        last = calendar.monthrange(year, mon)[1]
        return cls(date(year, mon, 1), date(year, mon, last))

    @classmethod
    def quarter(cls, quarter: date | str) -> Period:
        """The quarter holding a date, or named like "2026-Q3"."""
        if isinstance(quarter, str):
            m = re.fullmatch(r"(\d{4})-?Q([1-4])", quarter.strip().upper())
            if not m:
                raise ValueError(f"not a quarter like 2026-Q3: {quarter!r}")
            year, q = int(m[1]), int(m[2])
        else:
            year, q = quarter.year, (quarter.month - 1) // 3 + 1
        first = 3 * (q - 1) + 1
        return cls(date(year, first, 1),
                   date(year, first + 2, calendar.monthrange(year, first + 2)[1]))

    @classmethod
    def custom(cls, start: date | str, end: date | str) -> Period:
        return cls(_date(start), _date(end))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of equal length that ends the day before this one starts."""
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def _date(value: date | str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"not a date like 2026-07-01: {value!r}") from None


@dataclass(frozen=True)
class Result:
    """Rows of one indicator: column names in order, and one dict per row (a list, or for the
    dashboard a Rows, made as they are read)."""

    columns: tuple[str, ...]
    rows: Sequence[dict[str, Any]]

    def tuples(self) -> list[tuple[Any, ...]]:
        return [tuple(row[c] for c in self.columns) for row in self.rows]


class Rows(Sequence[dict[str, Any]]):
    """An indicator's rows as dicts, each made from the answer's Arrow table when first read: a
    page that shows the first 1,000 of 50,000 rows makes 1,000 (making Python objects of every
    row was half of such an indicator's time). A row read twice is the same dict, as in a list;
    a list of the same dicts compares equal. Pickled as the Arrow table."""

    def __init__(self, table: pa.Table, head: list[dict[str, Any]] | None = None) -> None:
        self._table = table
        self._made: list[dict[str, Any]] = list(head or ())
        self._lock = threading.Lock()  # a memoised answer is read by several threads

    def _make(self, count: int) -> None:
        if len(self._made) >= count:
            return
        with self._lock:
            done = len(self._made)
            if done < count:
                self._made.extend(self._table.slice(done, count - done).to_pylist())

    def __len__(self) -> int:
        return self._table.num_rows

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            self._make(max(start, stop) if step > 0 else start + 1)
            return self._made[index]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError("row index out of range")
        self._make(position + 1)
        return self._made[position]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if len(self._made) == len(self):  # all made: a list's own iterator
            return iter(self._made)
        return self._making()

    def _making(self) -> Iterator[dict[str, Any]]:
        # made as the loop goes, in growing chunks: a loop that stops early (zip with the
        # shown rows) makes little
        total = len(self)
        position = 0
        while position < total:
            if position >= len(self._made):
                self._make(min(total, position + max(1024, len(self._made))))
            yield self._made[position]
            position += 1

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, list | Rows):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment] - mutable, as a list

    def __repr__(self) -> str:
        return f"Rows({len(self)} rows)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Rows, (self._table,))

    def with_head(self, head: list[dict[str, Any]]) -> Rows:
        """The same rows with the first len(head) replaced by `head` (annotated copies); the
        rows made so far beyond the head are shared, not made again."""
        return Rows(self._table, [*head, *self._made[len(head):]])

    @property
    def table(self) -> pa.Table:
        """The answer's Arrow table: every column's values, as column_values gives them."""
        return self._table

    def column_values(self, name: str) -> list[Any]:
        """One column's values in row order, as the rows hold them (None for a name the answer
        lacks, as row.get gives), without making the rows."""
        if name not in self._table.column_names:
            return [None] * len(self)
        return self._table.column(name).to_pylist()

    def where(self, column: str, value: Any) -> Rows:
        """The rows whose `column` equals `value`, in order (none of the others made)."""
        return Rows(self._table.filter(pc.equal(self._table.column(column), value)))


# An answer's rows may also be a list: the workers' shared answers on disk outlive an upgrade.

def head_replaced(rows: Sequence[dict[str, Any]], head: list[dict[str, Any]]
                  ) -> Sequence[dict[str, Any]]:
    """`rows` with the first len(head) replaced by `head` (annotated copies of them); the other
    rows of a Rows stay unmade."""
    if isinstance(rows, Rows):
        return rows.with_head(head)
    return [*head, *rows[len(head):]]


def rows_where(rows: Sequence[dict[str, Any]], column: str, value: Any
               ) -> Sequence[dict[str, Any]]:
    """The rows whose `column` equals `value`, in order (of a Rows, the others unmade)."""
    if isinstance(rows, Rows):
        return rows.where(column, value)
    return [row for row in rows if row[column] == value]


def column_values(rows: Sequence[dict[str, Any]], name: str) -> list[Any]:
    """One column's values in row order (None where a row lacks it; of a Rows, without making
    the rows)."""
    if isinstance(rows, Rows):
        return rows.column_values(name)
    return [row.get(name) for row in rows]


def most_rows(rows: Sequence[dict[str, Any]], column: str, count: int
              ) -> list[dict[str, Any]]:
    """The `count` rows of largest `column`, largest first, rows of equal values in their
    order (as sorted() gives them): of a Rows, only those rows are made."""
    values = column_values(rows, column)
    positions = heapq.nsmallest(count, range(len(values)), key=lambda i: -values[i])
    if isinstance(rows, Rows):
        return rows.table.take(pa.array(positions, pa.int64())).to_pylist()
    return [rows[i] for i in positions]


# Queries of sql/ that serve the dashboard's drill-downs rather than the KPI framework;
# kpi_counts gives what the Overview's cards sum of five indicators' answers without the
# answers, usage_per_bucket and usage_per_language the usage alone of usage_trend and
# language_usage.
SUPPORT_QUERIES: tuple[str, ...] = ("usage_trend", "usage_per_bucket", "usage_per_language",
                                    "concept_detail", "release_uptake", "kpi_counts")


def load_sql(name: str) -> str:
    """The SQL text of an indicator (or a support query): sql/<name>.sql."""
    if name not in INDICATORS and name not in SUPPORT_QUERIES:
        raise ValueError(f"unknown indicator {name!r}; one of: {', '.join(INDICATORS)}")
    return models.sql(name)


def parameters(name: str) -> frozenset[str]:
    """The `$named` parameters an indicator's SQL uses (comments excluded)."""
    return models.parameters(load_sql(name))


def applicable_filters(name: str) -> tuple[str, ...]:
    """The filters an indicator can apply; the others are ignored for it."""
    used = parameters(name)
    return tuple(f for f in FILTERS if f in used)


def _check_filters(filters: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in filters.items():
        if name not in FILTERS:
            raise ValueError(f"unknown filter {name!r}; filters are: {', '.join(FILTERS)}")
        if value is None or value == "":
            clean[name] = None
            continue
        if name == "implementer_id":
            if isinstance(value, bool) or not isinstance(value, int | str) or not str(
                    value).isdigit():
                raise ValueError(f"implementer_id must be a whole number, got {value!r}")
            clean[name] = int(value)
            continue
        if name == "concept_uri":
            if not isinstance(value, str) or not CONCEPT_URI.fullmatch(value):
                raise ValueError(f"concept_uri must be an ESCO concept URI like "
                                 f"http://data.europa.eu/esco/skill/<id>, got {value!r:.80}")
            clean[name] = value
            continue
        allowed = {"concept_type": CONCEPT_TYPES, "language": LANGUAGES, "sector": SECTORS,
                   "context": CONTEXTS}.get(name)
        if not isinstance(value, str):
            raise ValueError(f"{name} must be text, got {value!r}")
        if allowed is not None and value not in allowed:
            raise ValueError(f"{name} must be one of: {', '.join(allowed)} (got {value!r})")
        if name == "country" and not COUNTRY_CODE.fullmatch(value):
            raise ValueError(f"country must be a two-letter upper-case code, got {value!r}")
        clean[name] = value
    return clean


def query(
    source: Settings | duckdb.DuckDBPyConnection,
    name: str,
    period: Period,
    *,
    label_language: str | None = None,
    rows_on_demand: bool = False,
    **filters: Any,
) -> Result:
    """Run one indicator over a period with optional filters (None = all).

    `source` is a reader connection (kpi.warehouse.open_reader) or settings, in which case the
    process's shared reader (kpi.warehouse.shared_reader) answers. Filters that the indicator
    cannot apply (see applicable_filters) are ignored; unknown filter names or bad values raise
    ValueError. With `rows_on_demand`, the result's rows are a Rows, made as they are read.
    """
    sql = load_sql(name)
    if not isinstance(period, Period):
        raise ValueError("period must be a kpi.warehouse.indicators.Period")
    if label_language is not None and label_language not in LANGUAGES:
        raise ValueError(f"label_language must be one of: {', '.join(LANGUAGES)}")
    values: dict[str, Any] = {f: None for f in FILTERS}
    values.update(_check_filters(filters))
    previous = period.previous()
    values.update(start=period.start, end=period.end, prev_start=previous.start,
                  prev_end=previous.end, label_language=label_language or "en")
    params = with_spans(values, parameters(name))
    if isinstance(source, Settings):
        from kpi.warehouse.reader import shared_reader  # the warehouse is only needed here

        con = shared_reader(source)
        try:
            return _run(con, sql, params, rows_on_demand)
        finally:
            con.close()
    return _run(source, sql, params, rows_on_demand)


def run_support_query(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any]
                      ) -> Result:
    """Run one of SUPPORT_QUERIES with bound `$named` parameters: `start` and `end` (and
    `prev_start`, `prev_end`) give the span bounds the query reads its period by
    (kpi.warehouse.spans); parameters it does not name are left out."""
    if name not in SUPPORT_QUERIES:
        raise ValueError(f"unknown query {name!r}; one of: {', '.join(SUPPORT_QUERIES)}")
    return _run(con, load_sql(name), with_spans(params, parameters(name)))


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any],
         rows_on_demand: bool = False) -> Result:
    cur = con.cursor()  # a cursor per query: safe when threads share one reader
    try:
        if rows_on_demand:
            answer = cur.sql(sql, params=params)
            columns = tuple(answer.columns)
            table = answer.to_arrow_table()
            return Result(columns, Rows(_python_ints(table, answer.types)))
        cur.execute(sql, params)
        columns = tuple(d[0] for d in cur.description)
        rows = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    finally:
        cur.close()
    return Result(columns, rows)


def _python_ints(table: pa.Table, types: list[Any]) -> pa.Table:
    """The table with DuckDB's 128-bit integers (what sum() of integers gives), which Arrow
    holds as decimals, as 64-bit integers: Python ints, as the rows of fetchall are."""
    for position, kind in enumerate(types):
        if str(kind) in ("HUGEINT", "UHUGEINT"):
            table = table.set_column(position, table.field(position).name,
                                     pc.cast(table.column(position), pa.int64()))
    return table
