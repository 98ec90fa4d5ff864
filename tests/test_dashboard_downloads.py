"""CSV downloads: exactly the rows a page shows for its period and filters, named after them,
and safe to open in a spreadsheet."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest

from dashboard.callbacks import download
from dashboard.state import FilterState, csv_filename
from kpi.exports.csvfile import arrow_cells, arrow_cells_apply, cell, safe_text, table_csv
from kpi.warehouse.indicators import query
from tests.dashboard_world import data_of


def test_download_is_exactly_what_is_filtered(app, world):
    data = data_of(app)
    payload = download(data, "/dashboard/concepts", "?country=DE", "most_used_concepts")
    state = FilterState(country="DE")
    assert payload["filename"] == csv_filename("most_used_concepts", state)
    assert payload["filename"].endswith("_country-DE.csv")
    expected = query(world.settings, "most_used_concepts", state.period(), country="DE")
    assert payload["content"] == table_csv(expected.columns, expected.rows)
    assert payload["content"].splitlines()[0].startswith("rank,concept_uri,")
    assert len(payload["content"].splitlines()) == 3  # header + SKILL + OCCUPATION
    assert download(data, "/dashboard/concepts", "", "no_such_table") is None


def test_csv_cells_are_safe_for_spreadsheets():
    text = table_csv(("a", "b", "c"), [{"a": "=cmd()", "b": -3, "c": ["x", "@y"]}])
    assert text == "a,b,c\n'=cmd(),-3,x; @y\n"


@pytest.mark.parametrize(("value", "shown"), [
    ("=1+1", "'=1+1"), ("+49", "'+49"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("plain", "plain"), ("a=b", "a=b"), ("", ""),
    (None, ""), (-3, "-3"), (-2.5, "-2.5"), (Decimal("-1.50"), "-1.50"), (True, "true"),
    (False, "false"), (date(2026, 7, 1), "2026-07-01"), (["-1", "x"], "'-1; x"), ((), ""),
])
def test_download_cells_follow_the_export_rule(value, shown):
    """A text cell is escaped as in the quarterly export (numbers written as text included);
    a number is a number."""
    assert cell(value) == shown
    if value is None or isinstance(value, str):
        assert cell(value) == safe_text(value)


@pytest.mark.parametrize("values", [
    pa.array(["=1+1", "+49", "-1", "@SUM(A1)", "\tx", "\rx", "plain", "a=b", "", None, " =x",
              "é=", "'q", "x\ny", 'say "hi"']),
    pa.array(["-a", None, "b"], pa.large_string()),
    pa.chunked_array([pa.array(["=x", "y"]), pa.array([None, "@z"])]),
    pa.array([-3, 0, None, 2**40], pa.int64()), pa.array([7, None], pa.int16()),
    pa.array([True, False, None]), pa.array([date(2026, 7, 1), None], pa.date32()),
])
def test_cells_made_by_arrow_are_the_cells_of_each_value(values):
    """A column of a download is made cells by Arrow where its type allows (table_csv): the
    same cells as `cell` makes of each value."""
    assert arrow_cells_apply(values.type)
    assert arrow_cells(values) == [cell(v) for v in values.to_pylist()]


@pytest.mark.parametrize("kind", [pa.float64(), pa.decimal128(10, 2), pa.list_(pa.string()),
                                  pa.timestamp("us")])
def test_other_columns_are_made_cells_value_by_value(kind):
    assert not arrow_cells_apply(kind)  # floats: Arrow writes some otherwise than Python
