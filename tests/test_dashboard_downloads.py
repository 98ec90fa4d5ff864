"""CSV downloads: exactly the rows a page shows for its period and filters, named after them,
and safe to open in a spreadsheet."""

from __future__ import annotations

import json
import random
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pytest
from plotly.io import json as plotly_json

from dashboard import data as data_module
from dashboard.callbacks import download
from dashboard.state import FilterState, csv_filename, parse_query
from kpi.exports.csvfile import (
    arrow_cells,
    arrow_cells_apply,
    arrow_csv_lines,
    cell,
    render_csv,
    safe_text,
    table_csv,
)
from kpi.warehouse.indicators import Rows, query
from tests.dashboard_world import callback, data_of, log_in


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


def test_a_download_goes_out_as_the_json_kept_with_it(app, monkeypatch):
    search = "?period=custom&start=2025-01-03&end=2026-12-29&country=DE"  # this test's own
    client = app.test_client()
    assert log_in(client).status_code == 302
    trigger = {"type": "download", "table": "most_used_concepts", "key": "concepts"}

    def click() -> Any:
        return callback(client, "download.data", {".n_clicks": [(trigger, 1)]},
                        {"url.pathname": "/dashboard/concepts", "url.search": search},
                        changed=json.dumps(trigger, separators=(",", ":"), sort_keys=True)
                        + ".n_clicks")

    # the payloads this project encoded, and the downloads Dash was handed (other threads of
    # the test process, such as an earlier test's warm-up, may encode pages meanwhile)
    encoded: list[object] = []
    handed: list[object] = []
    ours, dash_encoder = data_module.download_json, plotly_json.to_json_plotly

    def encode(value: Any) -> bytes:
        encoded.append(value)
        return ours(value)

    def dash_encode(value: Any, *args: Any, **kwargs: Any) -> str:
        if isinstance(value, dict) and "download" in value.get("response", {}):
            handed.append(value)
        return dash_encoder(value, *args, **kwargs)

    monkeypatch.setattr(data_module, "download_json", encode)
    monkeypatch.setattr(plotly_json, "to_json_plotly", dash_encode)
    first, again = click(), click()
    assert first.status_code == again.status_code == 200, first.data[:300]
    sent = first.get_json()["response"]["download"]["data"]
    assert sent == download(data_of(app), "/dashboard/concepts", search, "most_used_concepts")
    assert sent["filename"] == csv_filename("most_used_concepts", parse_query(search))
    # encoded once, at the first click; each click hands Dash those bytes, the same each time
    assert len(encoded) == 1 and again.data == first.data
    assert [type(h["response"]["download"]["data"]) for h in handed] == [orjson.Fragment] * 2


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
    assert arrow_cells(values).to_pylist() == [cell(v) for v in values.to_pylist()]


def test_a_slice_of_a_column_is_quoted_and_escaped_by_its_own_cells():
    """A column that is a slice of a longer array (a table filtered or cut) is quoted by its
    own fields alone, whatever the rest of its buffer holds: what the csv module writes."""
    whole = pa.array(["a,b", "c", "=d", 'e"f', None, "g\nh"])
    for start, length in ((1, 1), (1, 2), (0, 6), (3, 1), (4, 1), (2, 0), (5, 1)):
        part = whole.slice(start, length)
        cells = [arrow_cells(part), pa.array(["x"] * length, pa.string())]
        expected = render_csv(["h1", "h2"], [[cell(v), "x"] for v in part.to_pylist()])
        assert arrow_csv_lines(cells) == expected.split("\n", 1)[1], (start, length)


@pytest.mark.parametrize("seed", range(5))
def test_lines_written_by_arrow_are_the_csv_module_s(seed):
    """arrow_csv_lines writes what the csv module writes for the same cells: fields with a
    delimiter, a quote, a line break or a carriage return, empty fields, empty rows."""
    rnd = random.Random(seed)
    alphabet = ['a', 'é', ',', '"', "\n", "\r", " ", "'", ";", "\t", "=", "x", ""]
    width = rnd.randint(2, 5)
    rows = [["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 6)))
             for _ in range(width)] for _ in range(300)]
    rows.append([""] * width)
    columns = [pa.array(list(c), pa.string()) for c in zip(*rows, strict=True)]
    header = [f"c{i}" for i in range(width)]
    assert render_csv(header, []) + arrow_csv_lines(columns) == render_csv(header, rows)
    assert arrow_csv_lines([pa.array([], pa.string())] * width) == ""


def test_a_queue_download_is_the_same_text_written_either_way():
    """A table made on demand (columns) and the same rows as dicts give the same CSV: the
    review queue's shape, list and boolean columns included."""
    table = pa.table({
        "item_id": ["i1", "i2", "i3"], "label": ['say "hi", then', "=x", None],
        "spellings": [["a", "b"], [], None], "events": [3, None, 1],
        "grown": [True, False, None], "first_seen": [date(2026, 7, 1), None, date(2026, 1, 2)],
    })
    rows = Rows(table)
    assert table_csv(table.column_names, rows) == table_csv(table.column_names, table.to_pylist())


@pytest.mark.parametrize("kind", [pa.float64(), pa.decimal128(10, 2), pa.list_(pa.string()),
                                  pa.timestamp("us")])
def test_other_columns_are_made_cells_value_by_value(kind):
    assert not arrow_cells_apply(kind)  # floats: Arrow writes some otherwise than Python
