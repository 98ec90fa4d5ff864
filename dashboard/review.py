"""The Review page's work (dashboard.pages.review shows it): the items' rows, bulk decisions
through kpi.review.decisions.decide, an item's details, and the hand-over zip.

A decision is taken only for the user of the request's session, and only when that user is a
reviewer (read from the store, never from what the browser sends) and the request carries the
session's CSRF token (the page holds it in a dcc.Store). The guard of dashboard.login already
refuses a cross-site POST by its Origin and Sec-Fetch-Site headers, and the SameSite=Lax
cookie is not sent with one: the token is the third lock.
"""

from __future__ import annotations

import io
import logging
import tempfile
import zipfile
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import PREFIX
from dashboard.components import GRID_ROW_LIMIT
from dashboard.data import Data
from dashboard.login import csrf_ok, session_username
from dashboard.state import FilterState, parse_query, to_query, today
from kpi.review import ReviewError
from kpi.review.decisions import Queue, decide, latest_rows, trail
from kpi.review.handover import FILES, export_changes
from kpi.review.items import KINDS, Item, item_detail, item_id
from kpi.store.registry import user_role
from kpi.vocabulary import CONCEPT_URI
from kpi.warehouse.indicators import head_replaced

log = logging.getLogger("esco_kpi.dashboard")

TABLE = "review_items"
# the CSV's columns (the grid shows some of them)
TABLE_COLUMNS = ("item_id", "kind", "trend", "status", "grown_since_decision", "concept_uri",
                 "concept_type", "language", "label", "spellings", "implementers", "countries",
                 "events", "first_seen", "last_seen", "in_release", "released_as",
                 "implementers_by_month")
# The queue's sparkline covers this many months, the current one included.
SPARK_MONTHS = 6
# Between the months of implementers_by_month ("Jun 2026 0; Jul 2026 3"): as in every list
# cell, and a comma would have the CSV quote the field of each of its 100,000 items.
MONTHS_SEPARATOR = "; "
_BLOCKS = "▁▂▃▄▅▆▇█"
DECISION_BUTTONS = {"accept": "Accept", "reject": "Reject", "defer": "Defer",
                    "reopen": "Reopen"}
_DONE = {"accept": "accepted", "reject": "rejected", "defer": "deferred",
         "reopen": "reopened"}
GROWN = "more implementers since the decision"
# Up to this many item ids, item_statuses asks the audit trail for exactly those.
STATUS_LOOKUP_IDS = 500


def current_role(data: Data) -> str | None:
    """The role of the request's logged-in user (None without a session)."""
    user = session_username(data.engine())
    return user_role(data.engine(), user) if user else None


def trending(data: Data, state: FilterState) -> dict[str, str]:
    """item_id -> 'emerging' or 'rising', for the candidate labels and proposals that
    concept_trends flags in the page's period and filters."""
    try:
        rows = data.indicator("concept_trends", state.period(), state).rows
    except FileNotFoundError:
        return {}
    out = {}
    for r in rows:
        if r["kind"] in ("label", "proposal") and r["trend"] in ("emerging", "rising"):
            concept = r["concept_uri"] if r["kind"] == "label" else r["concept_type"]
            out[item_id(r["kind"], concept, r["language"], r["label_norm"])] = r["trend"]
    return out


def spark_months(now: date | None = None, months: int = SPARK_MONTHS) -> list[date]:
    """The first days of the last `months` months, oldest first, the current one last."""
    day = (now or today()).replace(day=1)
    out = [day]
    for _ in range(months - 1):
        day = (day - timedelta(days=1)).replace(day=1)
        out.append(day)
    return out[::-1]


def sparkline(values: list[int]) -> str:
    """Block characters, one per value, scaled to the largest (a zero is a space)."""
    top = max(values, default=0)
    if top <= 0:
        return " " * len(values)
    return "".join(_BLOCKS[round((v / top) * (len(_BLOCKS) - 1))] if v else " " for v in values)


def review_queue(data: Data, state: FilterState) -> tuple[Queue | None, dict[str, str]]:
    """The review queue for the page's filters (kind, status, language, concept type, one
    item) and each flagged item's trend in the page's period: what is emerging, then what is
    rising (concept_trends), then the rest, each by evidence. None before anything is
    published."""
    # the queue's evidence, its trends and its sparklines' months, at the same time
    data.prefetch(lambda: data.review_items(state.kind, state.status, state.language),
                  lambda: data.indicator("concept_trends", state.period(), state),
                  lambda: data.review_item_months_table(spark_months()[0]))
    try:
        queue = data.review_items(state.kind, state.status, state.language)
    except FileNotFoundError:
        return None, {}  # nothing published yet (a fresh install)
    ids = queue.order.column("item_id")
    keep = pc.is_valid(ids)
    if state.concept_type:
        keep = pc.and_(keep, pc.equal(queue.order.column("concept_type"), state.concept_type))
    if state.item:
        keep = pc.and_(keep, pc.equal(ids, state.item))
    queue = queue.where(keep)
    trends = trending(data, state) if len(queue) else {}
    # a stable partition: the evidence order stays within each group
    ids = queue.order.column("item_id")
    flagged = [pc.is_in(ids, value_set=pa.array(
        [i for i, t in trends.items() if t == trend], pa.string()))
        for trend in ("emerging", "rising")]
    rest = pc.invert(pc.or_(*flagged))
    positions = pa.concat_arrays([pc.indices_nonzero(m) for m in (*flagged, rest)])
    return Queue(queue.evidence, queue.order.take(positions), queue.decided), trends


def review_rows(data: Data, state: FilterState, limit: int | None = None
                ) -> list[dict[str, Any]]:
    """The queue (review_queue) as rows of TABLE_COLUMNS plus what the grid shows; only the
    first `limit` when given (a page shows the first GRID_ROW_LIMIT, the CSV has them all)."""
    return queue_rows(data, *review_queue(data, state), limit)


def queue_rows(data: Data, queue: Queue | None, trends: dict[str, str],
               limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of TABLE_COLUMNS (and the grid's own columns) for the first `limit` items (all
    when None) of a review_queue, whose trends are `trends`."""
    if queue is None:
        return []
    queue = queue.head(limit)
    months = spark_months()
    names = [f"{m:%b %Y}" for m in months]
    shown: dict[tuple[int, ...], tuple[str, str]] = {}  # counts -> (spark, text), reused
    rows = []
    for item, counts in zip(queue.items(), map(tuple, queue_month_counts(data, queue).T.tolist()),
                            strict=True):
        row = item.public()
        row.update(spellings=item.spellings, countries=item.countries,
                   label_norm=item.label_norm, trend=trends.get(item.item_id, ""))
        if counts not in shown:
            shown[counts] = (sparkline(list(counts)), _months_line(names, list(counts)))
        row["spark"], row["implementers_by_month"] = shown[counts]
        status = item.status + (f" ({GROWN})" if item.grown_since_decision else "")
        if item.in_release:
            status += f" in {item.in_release}"
        row["status_text"] = status
        row["concept"] = item.concept_uri or f"new {item.concept_type or 'concept'}"
        rows.append(row)
    return rows


def queue_table(data: Data, state: FilterState) -> pa.Table:
    """The whole queue (review_queue) as a table of TABLE_COLUMNS, in its order: what its CSV
    holds, the same cells as queue_rows gives. Made from the evidence's columns, with an Item
    only for each decided item: an Item and a row for each of the 100,000 items of a large
    warehouse took several times as long."""
    queue, trends = review_queue(data, state)
    if queue is None or not len(queue):
        return _empty_queue_table()
    order = queue.order.column("item_id").combine_chunks()
    # the evidence's rows in the queue's order, of the columns read below only; a decided
    # item's own values replace them below (its status, and for an item the warehouse no
    # longer holds, all of them)
    rows = queue.evidence.select(list(_EVIDENCE_COLUMNS)).take(queue.order.column("row"))
    decided = pc.is_in(order, value_set=pa.array(list(queue.decided), pa.string()))
    items = [queue.decided[i] for i in order.filter(decided).to_pylist()]

    def column(name: str, default: pa.Array | None = None) -> pa.Array:
        base = rows.column(name).combine_chunks() if default is None else default
        if not items:
            return base
        values = pa.array([getattr(item, name) for item in items], base.type)
        return pc.replace_with_mask(base, decided, values)

    n = len(order)
    columns: dict[str, pa.Array] = {"item_id": order}
    for name in _EVIDENCE_COLUMNS:
        columns[name] = column(name)
    columns["status"] = column("status", pa.array(["open"] * n, pa.string()))
    columns["grown_since_decision"] = column("grown_since_decision",
                                             pa.array([False] * n, pa.bool_()))
    for name in ("in_release", "released_as"):
        columns[name] = column(name, pa.nulls(n, pa.string()))
    flagged = pa.array(list(trends), pa.string())
    columns["trend"] = pc.fill_null(pc.take(pa.array(list(trends.values()), pa.string()),
                                            pc.index_in(order, value_set=flagged)), "")
    columns["implementers_by_month"] = months_text(spark_months(),
                                                   queue_month_counts(data, queue))
    return pa.table({name: columns[name] for name in TABLE_COLUMNS})


# the columns of the queue's table that come from the evidence
_EVIDENCE_COLUMNS = ("kind", "concept_uri", "concept_type", "language", "label", "spellings",
                     "implementers", "countries", "events", "first_seen", "last_seen")


def queue_month_counts(data: Data, queue: Queue) -> np.ndarray:
    """The implementers of each item of `queue` in each month of the sparkline: a months x
    items matrix in the queue's order, zeros where an item was not sent."""
    months = spark_months()
    rows = queue.order.column("row").combine_chunks()
    held = pc.is_valid(rows).to_numpy(zero_copy_only=False)
    counts = np.zeros((len(months), len(rows)), np.int64)
    if held.any():
        # every item of the evidence placed once per run by its row there (and given to the
        # workers holding the same evidence), then taken in the queue's order: placing the
        # months by item id took 60-100 ms for the whole queue
        every = data.derived(f"review_month_counts {months[0].isoformat()} {len(months)}",
                             queue.evidence, lambda: month_counts(
                                 data, queue.evidence.column("item_id"), months),
                             token=data.evidence_token(queue.evidence))
        counts[:, held] = every[:, rows.drop_null().to_numpy()]
    if not held.all():  # decided items the warehouse no longer holds: by their ids
        counts[:, ~held] = month_counts(data, queue.order.column("item_id").filter(
            pa.array(~held)), months)
    return counts


def month_counts(data: Data, item_ids: pa.Array, months: list[date]) -> np.ndarray:
    """The implementers of each of `item_ids` in each of `months` (the sparkline's): a months x
    items matrix, zeros where an item was not sent."""
    counts = np.zeros((len(months), len(item_ids)), np.int64)
    try:
        table = data.review_item_months_table(months[0])
    except FileNotFoundError:
        return counts
    if table.num_rows:
        # every (item, month) row of the table put in its place at once: its item's position
        # among `item_ids` and its month's (a row of another item, or of another month, has
        # none)
        item = pc.index_in(table.column("item_id"), value_set=item_ids)
        month = pc.index_in(table.column("month"), value_set=pa.array(months, pa.date32()))
        placed = pc.and_(pc.is_valid(item), pc.is_valid(month))
        counts[pc.filter(month, placed).to_numpy(), pc.filter(item, placed).to_numpy()] = (
            pc.fill_null(pc.filter(table.column("implementers"), placed), 0).to_numpy())
    return counts


def months_text(months: list[date], counts: np.ndarray) -> pa.Array:
    """implementers_by_month of every item, from a months x items matrix of counts. Few items
    differ in their months' counts: each distinct column of counts is written once, then put
    in place (about half the time of joining the months' texts for every item). A column
    becomes one number (its counts as digits in base largest + 1) when that fits in 63 bits."""
    base = int(counts.max(initial=0)) + 1
    if base ** len(months) < 2**63:
        keys = np.zeros(counts.shape[1], np.int64)
        for row in counts:
            keys = keys * base + row
        _, first, which = np.unique(keys, return_index=True, return_inverse=True)
        distinct = counts[:, first].T
    else:
        distinct, which = np.unique(counts.T, axis=0, return_inverse=True)
    names = [f"{m:%b %Y}" for m in months]
    texts = [_months_line(names, row) for row in distinct.tolist()]
    return pa.array(texts, pa.string()).take(pa.array(which.reshape(-1)))


def _months_line(names: list[str], counts: list[int]) -> str:
    """implementers_by_month of one item: "Jun 2026 0; Jul 2026 3; ..."."""
    return MONTHS_SEPARATOR.join(f"{name} {n}" for name, n in zip(names, counts, strict=True))


def _empty_queue_table() -> pa.Table:
    types = {"spellings": pa.int64(), "implementers": pa.int64(), "countries": pa.int64(),
             "events": pa.int64(), "first_seen": pa.date32(), "last_seen": pa.date32(),
             "grown_since_decision": pa.bool_()}
    return pa.table({name: pa.array([], types.get(name, pa.string())) for name in TABLE_COLUMNS})


_TREND_ORDER = {"emerging": 0, "rising": 1, "": 2}


def item_statuses(data: Data, item_ids: list[str]) -> dict[str, str]:
    """The review status of each of `item_ids` as its latest audit row says ("open" when
    none), with the release that holds a released or covered one."""
    with data.engine().connect() as conn:
        # a long list (50,000 candidate labels) is looked up among every decided item, which
        # are far fewer, rather than sent as 50,000 parameters
        latest = latest_rows(conn, item_ids if len(item_ids) <= STATUS_LOOKUP_IDS else None)
    out = {}
    for item in item_ids:
        row = latest.get(item)
        status = row["status"] if row else "open"
        if row and row.get("in_release"):
            status += f" in {row['in_release']}"
        out[item] = status
    return out


def with_review(data: Data, kind: str, rows: Sequence[dict[str, Any]], limit: int | None = None
                ) -> Sequence[dict[str, Any]]:
    """The rows of an indicator of `kind`'s suggestions (candidate_alt_labels,
    new_concept_proposals, translation_feedback), the first `limit` (those a grid shows) with
    their review item's id and status, the others as they are: the page's CSV has the
    indicator's own columns, and hashing every id of 50,000 candidate labels cost more than
    the rest of the page (150 ms). `limit` defaults to GRID_ROW_LIMIT."""
    concept = "concept_type" if kind == "proposal" else "concept_uri"
    limit = GRID_ROW_LIMIT if limit is None else limit
    shown = rows[:limit]
    ids = [item_id(kind, r[concept], r["language"], r["label_norm"]) for r in shown]
    statuses = item_statuses(data, ids)
    return head_replaced(rows, [{**r, "item_id": i, "review": statuses[i]}
                                for r, i in zip(shown, ids, strict=True)])


def review_links(data: Data, state: FilterState, kind: str, rows: Sequence[dict[str, Any]],
                 describe: Any, limit: int = 15) -> html.Div:
    """Links to the review queue for the first `limit` rows of an indicator of `kind`'s
    suggestions, each opening its item, and one to the whole queue of that kind."""
    if not rows:
        return html.P("Nothing to review in this period and these filters.", className="note")
    base = state.with_(concept=None, kind=None, status=None, item=None)
    shown = rows[:limit]
    if not all("review" in r for r in shown):  # not the rows a grid shows (with_review)
        shown = with_review(data, kind, shown, limit)
    links = [html.Li([dcc.Link(describe(r), href=f"{PREFIX}review"
                               f"{to_query(base.with_(item=r['item_id']))}"),
                      f": {r['review']}"]) for r in shown]
    everything = dcc.Link("the whole queue", href=f"{PREFIX}review"
                          f"{to_query(base.with_(kind=kind))}")
    return html.Div(className="review-links", children=[
        html.Ul(links), html.P(["Or open ", everything, "."], className="note")])


def _count(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def take_decision(data: Data, decision: str, selected: Any, reason: Any, note: Any,
                  token: Any) -> tuple[str, bool]:
    """Carry out a decision sent by the page: (message, whether anything was written).

    Who decides is the session's user; a viewer, a missing or wrong CSRF token, no
    selection, or a refusal of kpi.review (a rejection without a reason, say) write nothing.
    """
    engine = data.engine()
    user = session_username(engine)
    if not user:
        return "Not logged in: nothing was decided.", False
    if not csrf_ok(token):
        return "The page expired: reload it, then decide again. Nothing was decided.", False
    if user_role(engine, user) != "reviewer":
        log.warning("review decision refused: not a reviewer")
        return "Only reviewers can decide: nothing was decided.", False
    if decision not in DECISION_BUTTONS:
        return "Unknown decision: nothing was decided.", False
    ids = [r["item_id"] for r in selected or [] if isinstance(r, dict)
           and isinstance(r.get("item_id"), str)]
    if not ids:
        return "Select at least one item first.", False
    try:
        known = data.review_items(None, None, None).items(ids)
        done = decide(data.settings, engine, ids, decision, user,
                      reason=reason if decision == "reject" and reason else None,
                      note=note if isinstance(note, str) else None, items=known)
    except ReviewError as exc:
        return f"Nothing was decided: {exc}.", False
    why = f" ({reason.replace('_', ' ')})" if decision == "reject" else ""
    return f"{_count(len(done))} {_DONE[decision]}{why}.", True


def details(data: Data, state: FilterState, row: dict[str, Any] | None, selected: int
            ) -> list[Any]:
    """The details of one selected row: its evidence, the concept's labels in its language
    and the audit trail."""
    head: list[Any] = [html.H2("Details")]
    if not row or not isinstance(row.get("item_id"), str):
        return [*head, html.P("Select an item to see its details.", className="note")]
    item_id = row["item_id"]
    facts = [("Item", item_id), ("Kind", row.get("kind")), ("Language", row.get("language")),
             ("Label", row.get("label")), ("Status", row.get("status_text")),
             ("Spellings", row.get("spellings")), ("Implementers", row.get("implementers")),
             ("Countries", row.get("countries")), ("Events", row.get("events")),
             ("First seen", row.get("first_seen")), ("Last seen", row.get("last_seen"))]
    if selected > 1:
        head.append(html.P(f"{selected} items selected; the details are of the last one.",
                           className="note"))
    listing = html.Dl(className="review-facts", children=[
        part for name, value in facts for part in (html.Dt(name), html.Dd(
            "–" if value is None else str(value)))])
    body: list[Any] = [*head, html.H3(f"{row.get('label')} ({row.get('language')})"), listing]
    body += _spellings_and_months(data, row)
    uri = row.get("concept_uri")
    if isinstance(uri, str) and CONCEPT_URI.fullmatch(uri):
        target = state.with_(concept=uri, kind=None, status=None, item=None)
        body.append(html.P(dcc.Link("Open the concept page", id="review-concept-link",
                                    href=f"{PREFIX}concept{to_query(target)}")))
        body.append(_labels(data, state, uri, row.get("language")))
    body.append(_history(data, item_id))
    return body


def _spellings_and_months(data: Data, row: dict[str, Any]) -> list[Any]:
    """Every spelling the item was sent in, and its implementers month by month."""
    kind = row.get("kind")
    if kind not in KINDS or not isinstance(row.get("label_norm"), str):
        return []
    item = Item(item_id=str(row["item_id"]), kind=kind, concept_uri=row.get("concept_uri"),
                concept_type=row.get("concept_type"), language=str(row.get("language")),
                label=str(row.get("label")), label_norm=row["label_norm"], implementers=0,
                events=0, first_seen=None, last_seen=None)
    months = spark_months(months=12)
    try:
        detail = item_detail(data.settings, item, months[0])
    except FileNotFoundError:
        return []
    spellings = html.Div([html.H3("Spellings"), html.Table(id="review-spellings", children=[
        html.Caption("Every spelling sent, most implementers first"),
        html.Thead(html.Tr([html.Th(h, scope="col")
                            for h in ("spelling", "implementers", "events")])),
        html.Tbody([html.Tr([html.Td(label), html.Td(str(n), className="number"),
                             html.Td(str(events), className="number")])
                    for label, events, n in detail.spellings])])])
    by_month = {m: (n, events) for m, n, events in detail.months}
    counts = [by_month.get(m, (0, 0))[0] for m in months]
    spark = sparkline(counts)
    trend = html.Div([
        html.H3("Implementers by month"),
        html.P([html.Span(spark, className="spark", **{"aria-hidden": "true"}),
                f" {counts[0]} in {months[0]:%b %Y} to {counts[-1]} in {months[-1]:%b %Y}"]),
        html.Table(id="review-months", children=[
            html.Caption("Implementers and events per month, last 12 months"),
            html.Thead(html.Tr([html.Th(h, scope="col")
                                for h in ("month", "implementers", "events")])),
            html.Tbody([html.Tr([html.Td(f"{m:%b %Y}"),
                                 html.Td(str(by_month.get(m, (0, 0))[0]), className="number"),
                                 html.Td(str(by_month.get(m, (0, 0))[1]), className="number")])
                        for m in months])])])
    return [spellings, trend]


def _labels(data: Data, state: FilterState, uri: str, language: Any) -> html.Div:
    """The concept's catalogue labels in the item's language."""
    rows = data.concept_detail(state.period(), FilterState(), uri).rows
    labels = [(r["kind"], r["label"]) for r in rows
              if r["section"] == "label" and r["key"] == language]
    title = html.H3(f"The concept's labels in {language}")
    if not labels:
        return html.Div([title, html.P("The catalogue has no label in this language.",
                                       className="note")])
    return html.Div([title, html.Ul([html.Li(f"{label} ({kind})") for kind, label in labels])])


def _history(data: Data, item_id: str) -> html.Div:
    """The item's audit trail, oldest first."""
    rows = trail(data.engine(), item_id)
    title = html.H3("History")
    if not rows:
        return html.Div([title, html.P("No decision yet.", className="note")])
    headers = ("when (UTC)", "who", "decision", "status", "reason", "note", "implementers")
    body = [html.Tr([
        html.Td(r["decided_at"].strftime("%Y-%m-%d %H:%M") if r["decided_at"] else "–"),
        html.Td(r["decided_by"]), html.Td(r["decision"]), html.Td(r["status"]),
        html.Td(r["reason"] or "–"), html.Td(r["note"] or "–"),
        html.Td(str(r["implementers"]), className="number")]) for r in rows]
    return html.Div([title, html.Table(id="review-history", children=[
        html.Caption("Decisions on this item, oldest first"),
        html.Thead(html.Tr([html.Th(h, scope="col") for h in headers])),
        html.Tbody(body)])])


def handover_zip(data: Data, status: str = "accepted") -> dict[str, Any]:
    """kpi.review.handover's files for `status` as one zip (a dcc.Download payload)."""
    with tempfile.TemporaryDirectory(prefix="handover-") as folder:
        export_changes(data.settings, data.engine(), Path(folder), status)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in FILES:
                archive.write(Path(folder) / name, name)
    name = f"handover_{status}_{today().isoformat()}.zip"
    return dcc.send_bytes(buffer.getvalue(), name, type="application/zip")


def register_review_callbacks(app: Dash, data: Data) -> None:
    """Wire the Review page's decision, details and hand-over controls."""

    @app.callback(
        Output("review-message", "children"),
        Output("review-grid", "rowData"),
        Output("review-grid", "selectedRows"),
        *[Input(f"review-{d}", "n_clicks") for d in DECISION_BUTTONS],
        State("review-grid", "selectedRows"),
        State("review-reason", "value"),
        State("review-note", "value"),
        State("review-csrf", "data"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def on_decide(*args: Any) -> tuple[Any, Any, Any]:
        selected, reason, note, token, search = args[len(DECISION_BUTTONS):]
        trigger = ctx.triggered_id
        if not isinstance(trigger, str) or not trigger.startswith("review-"):
            raise PreventUpdate
        message, written = take_decision(data, trigger[len("review-"):], selected, reason,
                                         note, token)
        if not written:
            return message, no_update, no_update
        return message, review_rows(data, parse_query(search), GRID_ROW_LIMIT), []

    @app.callback(
        Output("review-details", "children"),
        Input("review-grid", "selectedRows"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def on_select(selected: Any, search: str | None) -> list[Any]:
        rows = [r for r in selected or [] if isinstance(r, dict)]
        return details(data, parse_query(search), rows[-1] if rows else None, len(rows))

    @app.callback(
        Output("review-handover", "data"),
        Input("review-handover-button", "n_clicks"),
        prevent_initial_call=True,
    )
    def on_handover(clicks: int | None) -> dict[str, Any]:
        if not clicks or session_username(data.engine()) is None:
            raise PreventUpdate
        return handover_zip(data)
