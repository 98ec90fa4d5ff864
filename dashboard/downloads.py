"""CSV downloads: a page's table as a file, from its own URL.

The table `t` of the page at /dashboard/<page> is at /dashboard/<page>/<t>.csv with the page's
query string (the Overview's at /dashboard/<t>.csv): the same rows the page shows for that
period and those filters, named after them (dashboard.state.csv_filename). The "Download CSV"
buttons fetch it in the browser (assets/downloads.js): the file goes out as it is, not inside a
callback's JSON, which for the review queue's 30 MB cost more than making the CSV.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, Response, request

from dashboard import PREFIX
from dashboard.callbacks import page_for
from dashboard.data import Data
from dashboard.state import csv_filename, parse_query
from kpi.exports.csvfile import table_csv_bytes


@dataclass(frozen=True)
class CsvFile:
    """A download: its file name and its bytes (UTF-8 CSV)."""

    filename: str
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")


def csv_path(page_path: str, table: str) -> str:
    """The URL path of a page's table as CSV (without the query string)."""
    return f"{PREFIX}{page_path}/{table}.csv" if page_path else f"{PREFIX}{table}.csv"


def download(data: Data, pathname: str | None, search: str | None, table: str
             ) -> CsvFile | None:
    """One table of the page at `pathname` as its CSV, for the query string `search` (None: no
    such page or table). Made once per host and view (Data.download keeps it)."""
    page = page_for(pathname)
    if page is None:
        return None
    state = parse_query(search)

    def build() -> bytes | None:
        # a page may make one table alone (the Overview: its CSV-only counts when asked)
        one = getattr(page, "table", None)
        found = one(data, state, table) if one else page.tables(data, state).get(table)
        return None if found is None else table_csv_bytes(found.columns, found.rows)

    # a LIVE page's tables show the review decisions: kept only until the next one
    content = data.download(page.PATH, table, state, build,
                            decisions=getattr(page, "LIVE", False))
    return None if content is None else CsvFile(csv_filename(table, state), content)


def add_download_route(server: Flask, data: Data) -> None:
    """GET /dashboard/[<page>/]<table>.csv (behind the log-in, like every route under
    /dashboard/)."""

    @server.get(f"{PREFIX}<path:where>.csv")
    def csv_download(where: str) -> Response:
        page_path, _, table = where.rpartition("/")
        found = download(data, PREFIX + page_path, request.query_string.decode(), table)
        if found is None:
            return Response(f"No table {table!r:.80} on the page {page_path or 'Overview'!r:.80}.",
                            status=404, mimetype="text/plain")
        return Response(found.content, mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{found.filename}"'})
