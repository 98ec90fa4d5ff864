"""CSV as esco-kpi writes it: one writer and one spreadsheet-formula rule, used by the quarterly
export and the dashboard's downloads alike.

The rule: a text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
leading `'`, so that no spreadsheet runs it as a formula. Text that only looks like a number
("-1") is text and escaped too; a number (int, float, Decimal) is written as a number, "-1"
included. Lines end with "\\n"; the same rows give the same text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from numbers import Number
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The same, for the fast path of `cell` (a set lookup of the first character), and as an
# Arrow array for arrow_cells (the first character of each cell looked up in it).
_FORMULA_CHARS = frozenset(FORMULA_START)
_FORMULA_ARRAY = pa.array(FORMULA_START, pa.string())


def safe_text(value: Any) -> str:
    """A text cell that no spreadsheet runs as a formula ('' for None)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def cell(value: Any) -> str:
    """Any value as a cell: '' for None, numbers as numbers, `true`/`false`, ISO dates, lists
    joined by '; ', everything else as safe text.

    A 50k-row download is some 700k cells: the common types are converted here by their
    exact type, without the generic chain of checks of `_any_cell`.
    """
    kind = type(value)
    if kind is str:
        return "'" + value if value[:1] in _FORMULA_CHARS else value
    if kind is int or kind is float:
        return str(value)
    if value is None:
        return ""
    if kind is date:
        return value.isoformat()
    return _any_cell(value)


def _any_cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return safe_text("; ".join(_plain(v) for v in value))
    if isinstance(value, bool | date | Number):
        return _plain(value)
    return safe_text(_plain(value))


def _plain(value: Any) -> str:
    """A value as text, before the formula rule."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "; ".join(_plain(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if isinstance(value, date) else str(value)


def render_csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """CSV text of a header and rows of finished cells (see `safe_text`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def table_csv(columns: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV text of dict rows (an indicator's result): the columns' values made cells by `cell`.
    Rows made on demand (kpi.warehouse.indicators.Rows) are read column by column instead,
    which makes no row: text, whole-number, true/false and date columns are made cells by
    Arrow (`arrow_cells`), the others value by value, and Arrow writes the lines
    (`arrow_csv_lines`). The same text either way."""
    return table_csv_bytes(columns, rows).decode("utf-8")


def table_csv_bytes(columns: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    """`table_csv` as UTF-8 bytes, what a download sends: the lines Arrow writes are bytes
    already, and decoding the review queue's 30 MB only to encode them again took 40 ms.
    Rows made on demand of more than SLICE_ROWS are written in slices, CSV_THREADS at a time
    (Arrow's kernels run outside the GIL): each line depends on its row alone."""
    columns = list(columns)
    if hasattr(rows, "column_values") and len(columns) > 1:
        header = render_csv(columns, []).encode("utf-8")
        table = rows.table
        if table.num_rows <= SLICE_ROWS:
            return header + _lines_bytes(columns, rows)
        slices = [type(rows)(table.slice(start, SLICE_ROWS))
                  for start in range(0, table.num_rows, SLICE_ROWS)]
        with ThreadPoolExecutor(CSV_THREADS, thread_name_prefix="csv") as pool:
            return header + b"".join(pool.map(lambda part: _lines_bytes(columns, part), slices))
    return render_csv(columns, [[cell(row.get(c)) for c in columns] for row in rows]
                      ).encode("utf-8")


# Rows made on demand of more than this are written in slices of this many rows, by
# CSV_THREADS threads (table_csv_bytes): the review queue's 115,000 rows in 0.056 s on two
# cores, against 0.14 in one piece (and 0.095 in slices on one thread: a slice's columns stay
# in the processor's cache).
SLICE_ROWS = 20_000
CSV_THREADS = 2


def _lines_bytes(columns: list[str], rows: Any) -> bytes:
    """The CSV lines of rows made on demand (Rows), as UTF-8 bytes."""
    cells = [_column_cells(rows, c) for c in columns]
    return _arrow_csv_bytes(cells, [_never_quoted(rows.table, c) for c in columns])


def _column_cells(rows: Any, name: str) -> pa.Array:
    """The cells of one column of rows made on demand: by Arrow where its type allows."""
    table = rows.table
    if name in table.column_names and arrow_cells_apply(table.schema.field(name).type):
        return arrow_cells(table.column(name))
    return pa.array([cell(v) for v in rows.column_values(name)], pa.string())


def _quoted_by_python(char: str) -> bool:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([f"a{char}b", "c"])
    return out.getvalue().startswith('"')


# The characters that make render_csv's writer quote a field (Python's csv module decides;
# asked once, so that arrow_csv_lines writes what it writes on any Python version).
_QUOTED = "".join(c for c in ',"\n\r' if _quoted_by_python(c))
_QUOTED_PATTERN = "[" + "".join(f"\\x{ord(c):02x}" for c in _QUOTED) + "]"


def _never_quoted(table: pa.Table, name: str) -> bool:
    """Whether a column's cells are numbers, true/false or dates: no quote needed, none looked
    for."""
    if name not in table.column_names:
        return False
    kind = table.schema.field(name).type
    return pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_date32(kind)


def arrow_csv_lines(cells: Sequence[pa.Array | pa.ChunkedArray],
                    never_quoted: Sequence[bool] = ()) -> str:
    """The CSV lines (each ending with "\\n") of columns of finished cells (Arrow string
    arrays without nulls, at least two of them): what render_csv writes for their rows, made
    by Arrow instead of a Python list per row (the review queue's 115,000 rows of 18 cells: 0.2
    s instead of 0.5). A field holding a character of _QUOTED is quoted, its quotes doubled,
    as the csv module does. (A row of one empty field is the module's own special case: hence
    two columns.) `never_quoted`: per column, whether its cells cannot hold such a character
    (numbers, dates), which spares looking for one."""
    return _arrow_csv_bytes(cells, never_quoted).decode("utf-8")


def _arrow_csv_bytes(cells: Sequence[pa.Array | pa.ChunkedArray],
                     never_quoted: Sequence[bool] = ()) -> bytes:
    """arrow_csv_lines as UTF-8 bytes (the data buffer of Arrow's lines, undecoded)."""
    if len(cells) < 2:
        raise ValueError("arrow_csv_lines writes rows of two cells or more")
    plain = list(never_quoted) or [False] * len(cells)
    fields = [_csv_field(column, skip) for column, skip in zip(cells, plain, strict=True)]
    lines = pc.binary_join_element_wise(
        pc.binary_join_element_wise(*fields, ","), "\n", "")
    if not len(lines):
        return b""
    # the lines lie end to end in the array's data buffer: that span is the text
    offsets = pa.Array.from_buffers(pa.int32(), len(lines) + 1, [None, lines.buffers()[1]],
                                    offset=lines.offset)
    first, last = offsets[0].as_py(), offsets[len(lines)].as_py()
    return lines.buffers()[2][first:last].to_pybytes()


def _csv_field(column: pa.Array | pa.ChunkedArray, never_quoted: bool = False) -> pa.Array:
    """A column of cells as CSV fields: quoted where the csv module quotes (few are)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if never_quoted or not _holds_a_quoted_char(column):
        return column
    quote = pc.match_substring_regex(column, _QUOTED_PATTERN)
    if not pc.any(quote).as_py():
        return column
    which = column.filter(quote)
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(which, '"', '""'), '"', "")
    return pc.replace_with_mask(column, quote, quoted)


def _holds_a_quoted_char(column: pa.Array) -> bool:
    """Whether the bytes of a string column's text hold a character of _QUOTED anywhere: one
    search of its data buffer per character, so that a column holding none (most: URIs,
    codes, ids) skips looking at each field. Bytes of the buffer outside the column's slice
    can only make this say yes when the fields hold none: then each field is looked at."""
    data = column.buffers()[2] if len(column) else None
    if data is None:
        return False
    text = data.to_pybytes()
    return any(char.encode() in text for char in _QUOTED)


def arrow_cells_apply(kind: pa.DataType) -> bool:
    """Whether arrow_cells makes a column of this type into the cells `cell` would: text,
    whole numbers, true/false and dates. (Not floats: Arrow writes some of them otherwise than
    Python does.)"""
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_integer(kind) or pa.types.is_boolean(kind)
            or pa.types.is_date32(kind))


def arrow_cells(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The cells of an Arrow column of a type arrow_cells_apply accepts, as `cell` makes them
    value by value (the formula rule on text, `true`/`false`, ISO dates, '' for null), as an
    Arrow string column: no Python string per cell."""
    kind = values.type
    if pa.types.is_boolean(kind):
        text = pc.if_else(values, "true", "false")
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        values = values.cast(pa.string())
        formula = pc.is_in(pc.utf8_slice_codeunits(values, 0, 1), value_set=_FORMULA_ARRAY)
        # most columns have no cell starting like a formula: nothing to escape then
        text = (pc.if_else(formula, pc.binary_join_element_wise("'", values, ""), values)
                if pc.any(formula).as_py() else values)
    else:
        text = pc.cast(values, pa.string())
    return pc.fill_null(text, "")

