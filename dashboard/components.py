"""Building blocks shared by the pages: cards, charts, grids, download buttons, empty states.

Free text (labels, comments, reasons) is only ever passed as data: Dash renders component
children as text, Plotly escapes hover text we pass as customdata, and AG Grid cells use the
default text renderer. Nothing here sets dangerously_allow_html or an HTML cell renderer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from html import escape as html_escape
from typing import Any

import dash_ag_grid as dag
import orjson
import plotly.graph_objects as go
import plotly.io as pio
from dash import dcc, html

# Okabe–Ito: distinguishable with the common colour-vision deficiencies. The first
# GRAPHIC_COLOURS reach 3:1 against the charts' white background (WCAG 1.4.11), so bars and
# lines are drawn in those; orange, sky blue and yellow (about 2.3:1, 2.3:1 and 1.3:1) come
# last, for fills that carry a dark outline or pattern as well.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000", "#E69F00", "#56B4E9",
           "#F0E442")
GRAPHIC_COLOURS = 5
# Every chart's template. As the default, a new figure takes it from the template Plotly keeps
# built; given to each figure's update_layout it is validated and copied anew: 8 of the 9 ms
# of a small bar chart, the same JSON.
pio.templates.default = "plotly_white"
GRID_ROW_LIMIT = 1000
SHORT_TABLE = 10
NO_DATA = "No data for this period"


@dataclass
class Table:
    """One downloadable table: what a grid or chart shows, and its CSV."""

    title: str
    columns: tuple[str, ...]
    rows: Sequence[dict[str, Any]]  # a list, or an answer's Rows (made as they are read)
    grid_columns: tuple[str, ...] | None = None  # shown in the grid; all go to the CSV
    widths: dict[str, int] = field(default_factory=dict)


def fmt_number(value: float | int | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    if percent:
        share = 100 * value
        # a catalogue share is often well under 1 %: "0.0 %" would read as none at all
        return f"{share:.2f} %" if 0 < share < 1 else f"{share:.1f} %"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def change_text(current: float | None, previous: float | None) -> tuple[str, str]:
    """An arrow and a percentage (words, not only colour), and a CSS class for its colour."""
    if current is None or previous is None:
        return "no comparison", "change-none"
    if previous == 0:
        return ("▲ new (previous period: 0)", "change-up") if current else ("■ no change",
                                                                          "change-none")
    pct = 100.0 * (current - previous) / previous
    if abs(pct) < 0.05:
        return "■ no change (0.0 %)", "change-none"
    arrow, css = ("▲", "change-up") if pct > 0 else ("▼", "change-down")
    return f"{arrow} {pct:+.1f} % vs previous period", css


def kpi_card(key: str, title: str, current: float | None, previous: float | None,
             percent: bool = False, change: bool = True) -> html.Div:
    """A figure and its change against the previous period (without `change`: the figure
    alone, for a count over all time)."""
    children = [html.Div(title, className="kpi-title"),
                html.Div(fmt_number(current, percent), className="kpi-value")]
    if change:
        text, css = change_text(current, previous)
        children.append(html.Div(text, className=f"kpi-change {css}",
                                 title=f"previous period: {fmt_number(previous, percent)}"))
    return html.Div(className="kpi-card", id=f"kpi-{key}", children=children)


def empty_state(message: str = NO_DATA) -> html.Div:
    return html.Div(message, className="empty-state", role="status")


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def download_button(table: str, key: str) -> html.Button:
    # `key` keeps ids unique when two sections of a page download the same table
    return html.Button("Download CSV", id={"type": "download", "table": table, "key": key},
                       className="download-button", title=f"Download {table} as CSV")


def section(title: str, table: str | None, *body: Any, note: str | None = None) -> html.Section:
    head = [html.H2(title)]
    if table:
        head.append(download_button(table, slug(title)))
    children: list[Any] = [html.Div(head, className="section-head")]
    if note:
        children.append(html.P(note, className="note"))
    children.extend(body)
    return html.Section(children, className="panel", id=f"section-{slug(title)}")


def display_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return "; ".join("" if v is None else str(v) for v in value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class Grid(dag.AgGrid):
    """dash_ag_grid's AgGrid, its rows handed to Dash's encoder as JSON made by orjson in one
    call: plotly's encoder otherwise walks every cell in Python (about 50 ms for a grid of
    1,000 rows: most of a Review page request, or of encoding a page the first time). The
    browser gets the same component; rows hold JSON values only (text, numbers, None)."""

    def to_plotly_json(self) -> dict[str, Any]:
        out = super().to_plotly_json()
        rows = out["props"].get("rowData")
        if isinstance(rows, list):
            out["props"]["rowData"] = orjson.Fragment(orjson.dumps(
                rows, default=_json_number, option=orjson.OPT_SERIALIZE_NUMPY))
        return out


def _json_number(value: Any) -> float:
    """A value orjson does not write itself, as plotly's encoder writes it: a Decimal (DuckDB
    answers some rounded figures as decimals) as a float."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not a JSON value in a grid row: {type(value).__name__}")


def grid(table_name: str, table: Table, clickable_concepts: bool = False) -> Any:
    """An AG Grid of the table's rows (text cells only); the first GRID_ROW_LIMIT rows."""
    if not table.rows:
        return empty_state()
    columns = table.grid_columns or table.columns
    rows = [{c: display_value(row.get(c)) for c in columns} for row in
            table.rows[:GRID_ROW_LIMIT]]
    if clickable_concepts:
        # the URI the click handler opens travels with the row, never shown as HTML
        for shown, row in zip(rows, table.rows, strict=False):
            shown["concept_uri"] = row.get("concept_uri")
    defs = []
    for c in columns:
        d: dict[str, Any] = {"field": c, "headerName": c.replace("_", " ")}
        if c in table.widths:
            d["width"] = table.widths[c]
        else:
            d["flex"] = 1
            d["minWidth"] = 110
        defs.append(d)
    note = []
    if len(table.rows) > GRID_ROW_LIMIT:
        note = [html.P(f"Showing the first {GRID_ROW_LIMIT:,} of {len(table.rows):,} rows; "
                       "the CSV has them all.", className="note")]
    hint = [html.P("Click a row, or move to it with the arrow keys and press Space, to open "
                   "the concept.", className="note")] if clickable_concepts else []
    return html.Div([*note, *hint, Grid(
        id={"type": "grid", "table": table_name},
        columnDefs=defs,
        rowData=rows,
        defaultColDef={"sortable": True, "filter": True, "resizable": True},
        dashGridOptions={
            "animateRows": False, "enableCellTextSelection": True, "ensureDomOrder": True,
            # Tab leaves the grid (one stop for the header, one for the cells; arrow keys move
            # inside): tabbing through every cell of 1,000 rows would hold the keyboard there
            "tabToNextCell": {"function": "false"}, "tabToNextHeader": {"function": "false"},
            # short tables take the room they need, long ones scroll inside 420 px
            **({"domLayout": "autoHeight"} if len(rows) <= SHORT_TABLE else {}),
            **({"rowSelection": {"mode": "singleRow", "checkboxes": False,
                                 "enableClickSelection": True}} if clickable_concepts else {}),
        },
        style={} if len(rows) <= SHORT_TABLE else {"height": "420px"},
        className="grid clickable" if clickable_concepts else "grid",
    )])


def figure(traces: list[dict[str, Any]], height: int, **layout: Any) -> go.Figure:
    """A chart of the dashboard's look (`height` in pixels, narrow margins, the palette, the
    legend under the plot) from its traces (dicts with their "type") and its own layout
    properties (axes, annotations...), as Plotly's nested dicts."""
    # given whole: Plotly's update_layout, update_xaxes, add_trace and add_annotation parse
    # every property path and check it again, 11 of the 13 ms a bar chart took to build
    legend = {"orientation": "h", "y": -0.15, **layout.pop("legend", {})}
    return go.Figure(data=traces, layout={
        "height": height, "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "colorway": list(PALETTE), "font": {"family": "system-ui, sans-serif", "size": 12},
        "legend": legend, **layout})


def graph(name: str, fig: go.Figure) -> dcc.Graph:
    """The Plotly graph itself; pages show it through `chart`, which makes it accessible."""
    # an explicit height: a responsive graph otherwise takes its (unsized) container's height
    return dcc.Graph(id={"type": "chart", "name": name}, figure=fig, responsive=True,
                     style={"height": f"{fig.layout.height or 320}px"},
                     config={"displaylogo": False, "displayModeBar": False})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell_text(value: Any) -> str:
    if isinstance(value, date):
        return f"{value:%d %b %Y}"
    if _is_number(value):
        return fmt_number(value)
    return "–" if value is None else str(display_value(value))


def describe(headers: Sequence[str], rows: Sequence[Sequence[Any]], noun: str = "bars") -> str:
    """What a chart shows, in one or two sentences built from its data: a screen reader's
    (and everyone's) summary of it.

    The value is the first numeric column, what it belongs to the columns before it; a time
    series (dates first) is summed up by its span, total and peak, categories by the highest
    and lowest.
    """
    if not rows:
        return NO_DATA + "."
    at = next((i for i in range(1, len(headers))
               if all(_is_number(r[i]) or r[i] is None for r in rows)), len(headers) - 1)
    value_name = headers[at]

    def label(row: Sequence[Any]) -> str:
        return ", ".join(_cell_text(v) for v in row[:at])

    values = [(r[at] or 0, r) for r in rows]
    top = max(values, key=lambda v: v[0])
    if isinstance(rows[0][0], date):
        total = sum(v for v, _ in values)
        return (f"{len(rows)} {headers[0]}s from {_cell_text(rows[0][0])} to "
                f"{_cell_text(rows[-1][0])}; total {value_name} {fmt_number(total)}; "
                f"highest on {label(top[1])} ({fmt_number(top[0])}).")
    if len(rows) == 1:
        return f"1 {noun.rstrip('s')}: {label(rows[0])}, {value_name} {fmt_number(top[0])}."
    low = min(values, key=lambda v: v[0])
    return (f"{len(rows)} {noun}. Highest {value_name}: {label(top[1])} "
            f"({fmt_number(top[0])}); lowest: {label(low[1])} ({fmt_number(low[0])}).")


def data_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]],
               links: Sequence[str | None] | None = None, note: str | None = None
               ) -> html.Details:
    """A chart's data as an HTML table, folded under a "Data table" summary. `links`: per row,
    where its first cell leads (what a click on its bar does), so the keyboard gets there too."""
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, value in enumerate(row):
            text = _cell_text(value)
            href = links[i] if links and j == 0 and i < len(links) else None
            cells.append(html.Td(dcc.Link(text, href=href) if href else text,
                                 className="number" if _is_number(value) else None))
        body.append(html.Tr(cells))
    caption = [title] + ([html.Span(f" ({note})", className="note")] if note else [])
    return html.Details(className="chart-data", children=[
        html.Summary(f"Data table: {title}"),
        html.Table([html.Caption(caption),
                    html.Thead(html.Tr([html.Th(h, scope="col") for h in headers])),
                    html.Tbody(body)]),
    ])


def chart(name: str, fig: go.Figure | None, *, title: str, headers: Sequence[str],
          rows: Sequence[Sequence[Any]], links: Sequence[str | None] | None = None,
          link_note: str | None = None, summary: str | None = None, noun: str = "bars"
          ) -> Any:
    """Every chart of the dashboard: a figure with a visible title and a caption stating what
    it shows (`describe`, unless `summary` is given), the Plotly graph as an image named by that
    caption, and its data as an HTML table (`data_table`) under it. `rows` are the chart's
    data, one per bar or point, in `headers`' order; `links` and `link_note` as in
    `data_table`."""
    if fig is None or not rows:
        return empty_state()
    caption_id = f"chart-{slug(name)}-caption"
    return html.Figure(className="chart", id=f"chart-{slug(name)}", children=[
        html.Figcaption(id=caption_id, children=[
            html.Span(title, className="chart-title"), ". ",
            html.Span(summary or describe(headers, rows, noun), className="chart-summary")]),
        # the drawing is mouse-only (hover, click): to assistive technology it is one image,
        # named by the caption; the table below carries the data and the links
        html.Div(graph(name, fig), role="img", className="chart-image",
                 **{"aria-labelledby": caption_id}),
        data_table(title, headers, rows, links, link_note),
    ])


def bar_chart(name: str, title: str, labels: Sequence[str], values: Sequence[float], *,
              label_name: str, value_name: str = "usage", uris: Sequence[str] | None = None,
              links: Sequence[str | None] | None = None, link_note: str | None = None,
              noun: str = "bars") -> Any:
    """A horizontal bar chart (`hbar`) through `chart`: its table lists the bars top down."""
    return chart(name, hbar(labels, values, uris=uris, value_name=value_name), title=title,
                 headers=(label_name, value_name), rows=list(zip(labels, values, strict=True)),
                 links=links, link_note=link_note, noun=noun)


def trend_chart(name: str, title: str, grain: str, current: list[dict],
                previous: list[dict] | None, value: str = "usage") -> Any:
    """A trend (`trend_figure`) through `chart`: per bucket this period's value and, when
    given, the previous period's (right-aligned, as drawn)."""
    fig = trend_figure(grain, current, previous, value)
    headers: tuple[str, ...] = (grain, value)
    rows: list[tuple] = [(r["bucket"], r[value]) for r in current]
    if previous:
        n = min(len(previous), len(rows))
        before: list[dict | None] = [None] * (len(rows) - n) + list(previous[-n:])
        headers = (grain, f"{value} this period", f"previous period {grain}",
                   f"{value} previous period")
        rows = [(b, v, p["bucket"] if p else None, p[value] if p else None)
                for (b, v), p in zip(rows, before, strict=True)]
    return chart(name, fig, title=title, headers=headers, rows=rows)


def hbar(labels: Sequence[str], values: Sequence[float], *, uris: Sequence[str] | None = None,
         value_name: str = "usage", height: int | None = None) -> go.Figure | None:
    """A horizontal bar chart, largest on top, values written beside the bars.

    `uris`: what a click on each bar opens: a concept URI, or "country=DE" to filter.
    """
    if not labels:
        return None
    labels, values = list(labels)[::-1], list(values)[::-1]
    bar = {"type": "bar", "x": values, "y": [plotly_text(_short(v)) for v in labels],
           "orientation": "h", "marker": {"color": PALETTE[0]},
           "text": [fmt_number(v) for v in values], "textposition": "outside", "textangle": 0,
           "cliponaxis": False,
           "hovertemplate": "%{y}<br>" + value_name + ": %{x:,}<extra></extra>",
           "name": value_name}
    if uris:
        bar["customdata"] = list(uris)[::-1]
    # whole counts: no 0.5 ticks on small axes; room on the right for the outside labels
    top = max(values) if values else 0
    return figure([bar], height or max(220, 24 * len(labels) + 60),
                  yaxis={"automargin": True, "type": "category"},
                  xaxis={"title": {"text": value_name}, "rangemode": "tozero",
                         "range": [0, top * 1.12 or 1], **({"dtick": 1} if top <= 8 else {})})


def plotly_text(text: str) -> str:
    """Plotly reads a few HTML tags in labels (<b>, <a>, <br>); entities keep text literal."""
    return html_escape(str(text), quote=False)


def _short(text: str, n: int = 60) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def trend_figure(grain: str, current: list[dict], previous: list[dict] | None,
                 value: str = "usage") -> go.Figure | None:
    """Usage per bucket; the previous period dashed, drawn over the same x positions."""
    if not any(r[value] for r in current) and not (previous and any(r[value] for r in previous)):
        return None
    x = [r["bucket"] for r in current]
    lines = [{"type": "scatter", "x": x, "y": [r[value] for r in current],
              "mode": "lines+markers", "name": "this period",
              "line": {"color": PALETTE[0], "width": 3}, "marker": {"symbol": "circle"}}]
    if previous:
        n = min(len(previous), len(x))
        lines.append({
            "type": "scatter", "x": x[-n:], "y": [r[value] for r in previous[-n:]],
            "mode": "lines+markers", "name": "previous period (shifted)",
            "line": {"color": PALETTE[1], "dash": "dash", "width": 2},
            "marker": {"symbol": "diamond-open"},
            "customdata": [r["bucket"].isoformat() for r in previous[-n:]],
            "hovertemplate": "%{customdata}: %{y:,}<extra>previous period</extra>",
        })
    return figure(lines, 320,
                  yaxis={"title": {"text": f"{value} per {grain}"}, "rangemode": "tozero"})


# Rising and falling told apart by more than colour: solid lines with upward triangles against
# dashed lines with downward ones (and the words of the section titles and tables).
DIRECTION_STYLES = {
    "rising": {"colour": PALETTE[0], "dash": "solid", "symbol": "triangle-up", "arrow": "▲"},
    "falling": {"colour": PALETTE[1], "dash": "dash", "symbol": "triangle-down", "arrow": "▼"},
}
SLOPE_ENDS = ("previous period", "this period")


def slope_figure(labels: Sequence[str], previous: Sequence[float], current: Sequence[float],
                 *, direction: str, hover: Sequence[str], targets: Sequence[str | None],
                 value_name: str = "events") -> go.Figure | None:
    """A slope chart: one line per item from the previous period's value to this period's,
    labelled with the item at its right end, drawn in `direction`'s style (DIRECTION_STYLES).

    `hover`: per item, its hover text (Plotly markup: escape free text with plotly_text);
    `targets`: what a click on each line opens (a concept URI), as for `hbar`.
    """
    if not labels:
        return None
    style = DIRECTION_STYLES[direction]
    height = max(240, 26 * len(labels) + 100)
    lines = []
    for i, (before, after, text, target) in enumerate(
            zip(previous, current, hover, targets, strict=True)):
        lines.append({
            "type": "scatter", "x": list(SLOPE_ENDS), "y": [before, after],
            "mode": "lines+markers",
            "line": {"color": style["colour"], "dash": style["dash"], "width": 2},
            "marker": {"symbol": style["symbol"], "size": 10, "color": style["colour"]},
            "hovertext": [text, text], "hovertemplate": "%{hovertext}<extra></extra>",
            **({"customdata": [target, target]} if target else {}),
            "name": direction, "legendgroup": direction, "showlegend": i == 0,
        })
    # the labels as annotations, spread apart where lines end close together (in the lines'
    # order, so each stays beside its own); the y axis is fixed so that the spacing holds
    top = max(*previous, *current, 1) * 1.08
    plot_pixels = height - 90  # without the margins, the x ticks and the legend
    for _ in range(2):
        spots = _spread(list(current), gap=top * 16 / plot_pixels)
        top = max(top, max(spots) * 1.04)
    notes = [{"x": SLOPE_ENDS[1], "y": spot, "text": plotly_text(_short(label, 40)),
              "showarrow": False, "xanchor": "left", "xshift": 10, "font": {"color": "#333333"}}
             for label, spot in zip(labels, spots, strict=True)]
    # room on the right for the labels at the lines' ends
    return figure(lines, height, annotations=notes,
                  xaxis={"type": "category", "range": [-0.15, 2.4], "showgrid": False},
                  yaxis={"title": {"text": value_name}, "range": [0, top]})


def _spread(values: list[float], gap: float) -> list[float]:
    """Positions for labels at `values`: in the same order, at least `gap` apart, each as low
    as it can be but not below its value."""
    spots = list(values)
    last = float("-inf")
    for i in sorted(range(len(values)), key=lambda i: values[i]):
        spots[i] = max(float(values[i]), last + gap)
        last = spots[i]
    return spots


# ---------------------------------------------------------------------------------------------
# ESCO releases: which one the dashboard speaks of, and concepts the current one lacks

# A concept's place in the current release, in a symbol and words (never colour alone).
IN_RELEASE_MARK, NOT_IN_RELEASE_MARK = "✓", "⚠"
# Fill patterns tell the series of a grouped bar chart apart without their colours.
PATTERNS = ("", "/", ".", "x", "-", "\\", "+", "|")


def release_status(in_current: bool | None, current: str | None, last: str | None) -> str:
    """A concept's place in the current release, for a grid cell or a label: "✓ in 1.2.0",
    or "⚠ not in 1.2.0 (last in 1.0.8)"."""
    if current is None:
        return "–"
    if in_current:
        return f"{IN_RELEASE_MARK} in {current}"
    return f"{NOT_IN_RELEASE_MARK} not in {current}" + (f" (last in {last})" if last else "")


def release_languages(languages: str | None) -> str:
    """A release's languages ("de,en") as shown: "de, en"."""
    found = [lang.strip() for lang in (languages or "").split(",") if lang.strip()]
    return ", ".join(found) if found else "languages not recorded"


def release_header(releases: Sequence[dict[str, Any]]) -> html.Details | html.Div:
    """The header's note of the ESCO release the figures speak of, "ESCO 1.2.0 (current) ·
    3 releases loaded", opening to the loaded releases with their languages.

    A disclosure (details/summary), not a hover tooltip: keyboard and screen reader users
    open it too. `releases`: the published catalogue_versions rows, oldest first.
    """
    if not releases:
        return html.Div("No ESCO release loaded", id="release-info", className="releases")
    current = releases[-1]
    count = f"{len(releases)} release{'s' if len(releases) != 1 else ''} loaded"
    items = []
    for release in reversed(releases):  # newest first
        loaded = str(release.get("loaded_at") or "")[:10]
        items.append(html.Li([
            html.Strong(release["version"]),
            " (current)" if release is current else "",
            f": {fmt_number(release['concepts'])} concepts, {fmt_number(release['labels'])} "
            f"labels; languages: {release_languages(release.get('languages'))}"
            + (f"; loaded {loaded}" if loaded else ""),
        ]))
    return html.Details(id="release-info", className="releases", children=[
        html.Summary(f"ESCO {current['version']} (current) · {count}",
                     id="release-summary"),
        html.Div(className="releases-list", children=[
            html.P("Loaded ESCO releases, newest first. The figures count every loaded "
                   "release's concepts; the current release is the newest."),
            html.Ul(items),
        ]),
    ])


def grouped_bars(categories: Sequence[str], series: dict[str, Sequence[float]], *,
                 value_name: str, series_name: str) -> go.Figure | None:
    """Vertical bars grouped by category, one series per key of `series` (in its order), told
    apart by colour, fill pattern and the legend; each bar's value written on it."""
    if not categories or not series:
        return None
    bars = []
    top = 0.0
    for i, (name, values) in enumerate(series.items()):
        top = max(top, *values)
        bars.append({
            "type": "bar", "x": [plotly_text(c) for c in categories], "y": list(values),
            "name": plotly_text(name),
            "marker": {"color": PALETTE[i % GRAPHIC_COLOURS],
                       "pattern": {"shape": PATTERNS[i % len(PATTERNS)], "fgcolor": "#ffffff",
                                   "solidity": 0.35},
                       "line": {"color": "#1b1b1b", "width": 1}},
            "text": [fmt_number(v) for v in values], "textposition": "outside",
            "cliponaxis": False,
            "hovertemplate": f"%{{x}}<br>{plotly_text(series_name)} {plotly_text(name)}: "
                             f"%{{y:,}}<extra></extra>",
        })
    return figure(bars, 320, barmode="group", legend={"title": {"text": series_name}},
                  xaxis={"type": "category"},
                  yaxis={"title": {"text": value_name}, "rangemode": "tozero",
                         "range": [0, top * 1.15 or 1], **({"dtick": 1} if top <= 8 else {})})
