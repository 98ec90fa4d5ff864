"""CSV downloads: exactly the rows a page shows for its period and filters, named after them,
and safe to open in a spreadsheet."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from dashboard import downloads as downloads_module
from dashboard.downloads import download
from dashboard.state import FilterState, csv_filename, parse_query
from kpi.exports import csvfile
from kpi.exports.csvfile import (
    arrow_cells,
    arrow_cells_apply,
    arrow_csv_lines,
    cell,
    render_csv,
    safe_text,
    table_csv,
    table_csv_bytes,
)
from kpi.warehouse.indicators import Rows, query
from tests.dashboard_world import data_of, log_in


def test_download_is_exactly_what_is_filtered(app, world):
    data = data_of(app)
    payload = download(data, "/dashboard/concepts", "?country=DE", "most_used_concepts")
    state = FilterState(country="DE")
    assert payload.filename == csv_filename("most_used_concepts", state)
    assert payload.filename.endswith("_country-DE.csv")
    expected = query(world.settings, "most_used_concepts", state.period(), country="DE")
    assert payload.text == table_csv(expected.columns, expected.rows)
    assert payload.text.splitlines()[0].startswith("rank,concept_uri,")
    assert len(payload.text.splitlines()) == 3  # header + SKILL + OCCUPATION
    assert download(data, "/dashboard/concepts", "", "no_such_table") is None


def test_a_download_is_a_file_at_the_page_s_url(app, monkeypatch):
    """GET /dashboard/<page>/<table>.csv with the page's query string: the file itself (no
    callback's JSON around it), named after the view, built once; an unknown page or table is
    a 404 with a plain message; without a session, the log-in page."""
    search = "?period=custom&start=2025-01-03&end=2026-12-29&country=DE"  # this test's own
    client = app.test_client()
    anonymous = client.get("/dashboard/concepts/most_used_concepts.csv" + search)
    assert anonymous.status_code == 302 and anonymous.location.startswith("/login?next=")
    assert log_in(client).status_code == 302
    built: list[bytes] = []
    original = downloads_module.table_csv_bytes

    def counted(*args: Any) -> bytes:
        built.append(original(*args))
        return built[-1]

    monkeypatch.setattr(downloads_module, "table_csv_bytes", counted)
    first = client.get("/dashboard/concepts/most_used_concepts.csv" + search)
    again = client.get("/dashboard/concepts/most_used_concepts.csv" + search)
    assert first.status_code == again.status_code == 200, first.data[:300]
    assert first.content_type == "text/csv; charset=utf-8"
    name = csv_filename("most_used_concepts", parse_query(search))
    assert first.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    assert first.headers["Cache-Control"] == "no-store"
    expected = download(data_of(app), "/dashboard/concepts", search, "most_used_concepts")
    assert first.data == again.data == expected.content
    assert len(built) == 1  # the second request got the kept file
    # the Overview's tables hang off /dashboard/ itself
    overview = client.get("/dashboard/kpi_summary.csv" + search)
    assert overview.status_code == 200
    assert overview.data.decode().startswith("kpi,current,previous,change_pct,")
    for url, message in (
            ("/dashboard/concepts/no_such_table.csv", "No table 'no_such_table' on the page "
                                                      "'concepts'."),
            ("/dashboard/nowhere/most_used_concepts.csv", "No table 'most_used_concepts' on "
                                                          "the page 'nowhere'."),
            ("/dashboard/no_such_table.csv", "No table 'no_such_table' on the page 'Overview'.")):
        missing = client.get(url)
        assert (missing.status_code, missing.mimetype, missing.text) == (
            404, "text/plain", message), url


def test_the_download_buttons_start_a_download_in_the_browser(app):
    """The buttons are wired to assets/downloads.js (a clientside callback): no server
    callback answers them, and the status region they write is in the layout."""
    client = app.test_client()
    assert log_in(client).status_code == 302
    deps = client.get("/dashboard/_dash-dependencies").get_json()
    wired = [d for d in deps if any('"type":"download"' in i["id"] for i in d["inputs"])]
    assert [(d["output"], d["clientside_function"]) for d in wired] == [
        ("download-status.children", {"namespace": "downloads", "function_name": "start"})]
    script = client.get("/dashboard/assets/downloads.js")
    assert script.status_code == 200 and b"downloads" in script.data


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


@pytest.mark.parametrize("slice_rows", [1, 7, 64, 1000])
def test_a_long_table_written_in_slices_is_the_same_text(monkeypatch, slice_rows):
    """Rows made on demand of more than SLICE_ROWS are written slice by slice by threads
    (table_csv_bytes): the same bytes as rows written one by one, in order, whatever the
    slices' size."""
    rnd = random.Random(slice_rows)
    texts = ["a", 'say "hi", then', "=x", "x\ny", "é", "", None, "-1", "plain"]
    n = 300
    table = pa.table({
        "id": [f"i{k}" for k in range(n)], "label": [rnd.choice(texts) for _ in range(n)],
        "events": [rnd.choice((None, 0, -3, 2**40)) for _ in range(n)],
        "share": [rnd.choice((None, 0.5, -1.25)) for _ in range(n)],
        "spellings": [rnd.choice((None, [], ["a", "=b"])) for _ in range(n)],
        "seen": [rnd.choice((None, date(2026, 7, 1))) for _ in range(n)],
    })
    monkeypatch.setattr(csvfile, "SLICE_ROWS", slice_rows)
    written = table_csv_bytes(table.column_names, Rows(table))
    assert written == table_csv(table.column_names, table.to_pylist()).encode("utf-8")


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
