"""Review: the editors' work queue of suggestions (kpi.review), with bulk decisions for
reviewers, an item's details, and the hand-over download.

LIVE: the page shows the ingest store's decisions and the user's role, so it is rendered on
every request, never memoised; what it shows of the queue is (queue_view), and the Warmer
prepares that for the default views (`warm`). The decisions themselves are taken in
dashboard.review.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard import PREFIX
from dashboard.components import GRID_ROW_LIMIT, Grid, Table, empty_state, section
from dashboard.data import Data
from dashboard.review import (
    DECISION_BUTTONS,
    TABLE,
    TABLE_COLUMNS,
    current_role,
    details,
    queue_rows,
    queue_table,
    review_queue,
)
from dashboard.state import FilterState, to_query
from kpi.review.decisions import REASONS, STATUSES
from kpi.review.items import KINDS
from kpi.warehouse.indicators import Rows

TITLE = "Review"
PATH = "review"
LIVE = True
# shown in the grid; the CSV has TABLE_COLUMNS
GRID_COLUMNS = ("kind", "trend", "language", "concept", "label", "implementers", "spark",
                "countries", "events", "first_seen", "last_seen", "status_text")
HEADERS = {"status_text": "status", "first_seen": "first seen", "last_seen": "last seen",
           "spark": "implementers, 6 months"}
# a cell's tooltip (and what a screen reader gets from the details panel): the figures
TOOLTIPS = {"spark": "implementers_by_month"}


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    # the whole queue, for its CSV, made as columns (the grid makes rows of the first
    # GRID_ROW_LIMIT items only: queue_rows)
    return {TABLE: Table("Review items", TABLE_COLUMNS, Rows(queue_table(data, state)))}


def _choices(state: FilterState, name: str, values: tuple[str, ...], label: str) -> html.Div:
    """One filter of the page as links (the choice stays in the URL like every filter)."""
    current = getattr(state, name)
    links = []
    for value in (None, *values):
        href = f"{PREFIX}{PATH}{to_query(state.with_(**{name: value}))}"
        key = f"review-{name}-{value or 'all'}"
        # the current choice is text, not a link (dcc.Link takes no aria-current)
        links.append(html.Li(
            html.Span(value or "all", className="choice active", id=key,
                      **{"aria-current": "true"}) if value == current else
            dcc.Link(value or "all", href=href, className="choice", id=key)))
    return html.Div(className="review-filter", children=[
        html.Span(label, className="filter-label", id=f"review-{name}-label"),
        html.Ul(links, className="choices", **{"aria-labelledby": f"review-{name}-label"}),
    ])


def _grid(rows: list[dict[str, Any]], reviewer: bool) -> Any:
    """The items' grid: several rows selectable by a reviewer (checkboxes, or Space on a
    row), one by a viewer (for its details)."""
    defs: list[dict[str, Any]] = []
    for c in GRID_COLUMNS:
        d: dict[str, Any] = {"field": c, "headerName": HEADERS.get(c, c.replace("_", " ")),
                             "flex": 1, "minWidth": 100}
        if c in TOOLTIPS:
            d["tooltipField"] = TOOLTIPS[c]
            d["cellClass"] = "spark"
        defs.append(d)
    selection = ({"mode": "multiRow", "checkboxes": True, "headerCheckbox": True,
                  "enableClickSelection": True} if reviewer else
                 {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True})
    return Grid(
        id="review-grid",
        columnDefs=defs,
        rowData=rows[:GRID_ROW_LIMIT],
        getRowId="params.data.item_id",  # the selection survives a refresh after a decision
        defaultColDef={"sortable": True, "filter": True, "resizable": True},
        dashGridOptions={
            "animateRows": False, "enableCellTextSelection": True, "ensureDomOrder": True,
            "tabToNextCell": {"function": "false"}, "tabToNextHeader": {"function": "false"},
            "rowSelection": selection,
        },
        style={"height": "420px"},
        className="grid clickable",
    )


def _controls() -> html.Div:
    """A reviewer's bulk decision: reason, note, and one button per decision."""
    return html.Div(id="review-controls", className="review-controls", role="group",
                    **{"aria-label": "Decide on the selected items"}, children=[
        html.Fieldset(className="review-reason", children=[
            html.Legend("Reason (a rejection needs one)"),
            dcc.RadioItems(id="review-reason", options=[
                {"label": r.replace("_", " "), "value": r} for r in REASONS],
                value=None, inline=True, className="presets"),
        ]),
        html.Div(className="review-note", children=[
            html.Label("Note (optional)", htmlFor="review-note"),
            dcc.Textarea(id="review-note", maxLength=2000, rows=2, value=""),
        ]),
        html.Div(className="review-buttons", children=[
            html.Button(text, id=f"review-{decision}", className="review-button",
                        n_clicks=0, type="button")
            for decision, text in DECISION_BUTTONS.items()]),
    ])


def queue_view(data: Data, state: FilterState) -> tuple[int, list[dict[str, Any]]]:
    """What the page shows of the queue for a state, the same for every user: how many items,
    and the rows of the first GRID_ROW_LIMIT (the CSV download builds them all). Memoised
    and shared with the other workers (Data.review_view)."""
    def view() -> tuple[int, list[dict[str, Any]]]:
        queue, trends = review_queue(data, state)
        return (len(queue) if queue is not None else 0,
                queue_rows(data, queue, trends, GRID_ROW_LIMIT))

    return data.review_view(state, view)


def warm(data: Data, state: FilterState) -> None:
    """What the Warmer prepares of this page for a default view (dashboard.callbacks.warm_view):
    its queue_view. The page itself is rendered at every request."""
    queue_view(data, state)


def render(data: Data, state: FilterState) -> list[Any]:
    from dashboard.login import csrf_token

    reviewer = current_role(data) == "reviewer"
    total, rows = queue_view(data, state)
    filters = html.Div(className="review-filters", children=[
        _choices(state, "kind", KINDS, "Kind"), _choices(state, "status", STATUSES, "Status")])
    note = ("Evidence covers all time: language and concept type filter the items. First "
            "come the labels and proposals that are emerging, then those rising, in the "
            "period and filters chosen (see Trends on the Overview); then the rest, each by "
            "implementers, then events.")
    body: list[Any] = [
        filters,
        html.Div(id="review-message", className="review-message", role="status",
                 **{"aria-live": "polite"}),
    ]
    if reviewer:
        # the token the decision callback checks against the session (dashboard.review)
        body += [dcc.Store(id="review-csrf", data=csrf_token()),
                 html.P(f"Select items (click a row, or move to it with the arrow keys and "
                        f"press Space), then decide. {total} items.",
                        className="note")]
    else:
        body.append(html.P("You can view and download the items; reviewers decide on them. "
                           "Select a row to see its details.", className="note"))
    if state.item:
        everything = f"{PREFIX}{PATH}{to_query(state.with_(item=None))}"
        body.append(html.P([
            "Showing one item, as linked. " if rows else
            "The linked item is not in the queue with these filters. ",
            dcc.Link("Show every item", href=everything, id="review-all-items")],
            className="note"))
    if total > GRID_ROW_LIMIT:
        body.append(html.P(f"Showing the first {GRID_ROW_LIMIT:,} of {total:,} items; the "
                           "CSV has them all.", className="note"))
    body.append(_grid(rows, reviewer) if rows else empty_state("No review items."))
    if reviewer and rows:
        body.append(_controls())
    handover = html.Div(className="review-handover", children=[
        html.Button("Download hand-over (zip)", id="review-handover-button",
                    className="download-button", n_clicks=0, type="button",
                    title="changes.csv, changes.ttl and manifest.json of the accepted items"),
        dcc.Download(id="review-handover"),
    ])
    # an item opened by a link shows its details at once
    opened = (details(data, state, rows[0], 1) if state.item and len(rows) == 1 else
             [html.H2("Details"), html.P("Select an item to see its details.", className="note")])
    return [
        section("Review items", TABLE, *body, handover, note=note),
        html.Section(id="review-details", className="panel review-details",
                     **{"aria-label": "Details of the selected item"}, children=opened),
    ]
