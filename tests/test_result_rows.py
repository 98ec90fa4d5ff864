"""Indicator answers whose rows are made on demand (kpi.warehouse.indicators.Rows), as the
dashboard reads them: the same rows, of the same Python types, as the answer fetched whole, on
both stores' warehouses and on one with trends; and the behaviour of a list."""

from __future__ import annotations

import pickle
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pytest

from kpi.exports.csvfile import table_csv
from kpi.warehouse.indicators import (
    INDICATORS,
    Period,
    Result,
    Rows,
    column_values,
    head_replaced,
    most_rows,
    query,
    rows_where,
)
from tests import dashboard_world

trend_world = dashboard_world.trend_world


def shape(value: Any) -> Any:
    """A value's Python type, and its items' types for a list or dict."""
    if isinstance(value, list):
        return ("list", [shape(v) for v in value])
    if isinstance(value, dict):
        return ("dict", {k: shape(v) for k, v in value.items()})
    return type(value).__name__


def assert_same(eager: Result, on_demand: Result) -> None:
    assert isinstance(on_demand.rows, Rows)
    assert on_demand.columns == eager.columns
    assert len(on_demand.rows) == len(eager.rows)
    # the CSV, written column by column from the table, before any row is made
    assert table_csv(eager.columns, on_demand.rows) == table_csv(eager.columns, eager.rows)
    for whole, made in zip(eager.rows, on_demand.rows, strict=True):
        assert made == whole
        assert shape(made) == shape(whole)


def every_answer(settings: Any, period: Period, **filters: Any) -> int:
    """Each indicator both ways; how many rows they had in all."""
    total = 0
    for name in INDICATORS:
        eager = query(settings, name, period, **filters)
        assert_same(eager, query(settings, name, period, rows_on_demand=True, **filters))
        total += len(eager.rows)
    return total


def test_rows_made_on_demand_equal_the_whole_answer(world):
    period = Period.custom(date.today() - timedelta(days=400), date.today())
    assert every_answer(world.settings, period) > 0
    every_answer(world.settings, period, language="de", label_language="de")
    every_answer(world.settings, period, country="DE", concept_type="skill")


def test_rows_made_on_demand_equal_the_whole_answer_with_trends(trend_world):  # noqa: F811
    period = Period.quarter("2026-Q3")
    trends = query(trend_world.settings, "concept_trends", period)
    assert trends.rows  # the store has rising, emerging and falling items
    assert every_answer(trend_world.settings, period) > len(trends.rows)


def test_rows_behave_as_a_list():
    made = [{"n": i, "label": f"row {i}", "tags": ["a", str(i)]} for i in range(5)]
    rows = Rows(pa.Table.from_pylist(made))
    assert len(rows) == 5 and bool(rows)
    assert rows[0] is rows[0] and rows[-1] == made[-1]
    assert rows[1:3] == made[1:3] and rows[::2] == made[::2] and rows[10:] == []
    with pytest.raises(IndexError):
        rows[5]
    assert rows == made and made == rows and rows != made[:4]
    assert list(rows) == made and [r["n"] for r in rows] == list(range(5))
    first = rows[0]
    assert next(iter(rows)) is first  # making the rest keeps the rows made before
    again = pickle.loads(pickle.dumps(rows))
    assert isinstance(again, Rows) and again == made
    marked = rows.with_head([{**made[0], "mark": True}])
    assert marked[0]["mark"] and marked[1:] == made[1:] and "mark" not in rows[0]
    assert marked[3] is rows[3]  # the rows made already are shared, not made again
    assert Rows(pa.Table.from_pylist([])) == [] and not Rows(pa.table({"n": []}))
    # a CSV of rows with an annotated head, and of a column the answer lacks
    assert table_csv(("n", "label", "tags", "none"), marked) == table_csv(
        ("n", "label", "tags", "none"), made)
    flagged = Rows(pa.Table.from_pylist([{**r, "odd": r["n"] % 2 == 1} for r in made]))
    assert [r["n"] for r in flagged.where("odd", True)] == [1, 3]
    assert flagged.where("n", 9) == []


def test_head_replaced_and_rows_where_take_lists_too():
    """Answers shared on disk by an earlier version hold lists: the pages' helpers take both."""
    made = [{"n": i, "odd": i % 2 == 1} for i in range(4)]
    for rows in (made, Rows(pa.Table.from_pylist(made))):
        replaced = head_replaced(rows, [{"n": 0, "odd": False, "mark": 1}])
        assert replaced[0]["mark"] == 1 and list(replaced[1:]) == made[1:]
        assert len(replaced) == 4 and "mark" not in rows[0]
        assert list(rows_where(rows, "odd", True)) == [made[1], made[3]]


def test_column_values_and_most_rows_take_lists_too_and_make_no_other_row():
    """A page's sums and top rows from an answer's columns: the values of sorted() and of a
    loop over the rows, of a Rows without making its rows."""
    made = [{"n": i, "implementers": i % 4, "label": f"row {i}"} for i in range(10)]
    for rows in (made, Rows(pa.Table.from_pylist(made))):
        assert column_values(rows, "implementers") == [r["implementers"] for r in made]
        assert column_values(rows, "absent") == [None] * 10
        best = sorted(made, key=lambda r: -r["implementers"])
        assert most_rows(rows, "implementers", 4) == best[:4]  # ties keep the rows' order
        assert most_rows(rows, "implementers", 20) == best
        assert most_rows(rows, "implementers", 0) == []
    rows = Rows(pa.Table.from_pylist(made))
    most_rows(rows, "implementers", 3)
    column_values(rows, "n")
    assert not rows._made  # nothing made: a page reads the first rows only
