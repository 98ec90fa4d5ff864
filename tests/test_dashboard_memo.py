"""What the dashboard keeps: indicator results and rendered pages memoised per period
fingerprint, shared by the workers of a host, refreshed by exactly the runs that change them,
and warmed up after each run."""

from __future__ import annotations

import json
import re
import shutil
from typing import Any

import pytest
from plotly.io.json import to_json_plotly

from dashboard.app import create_dashboard
from dashboard.callbacks import render_body, warm_view
from dashboard.data import (
    QUALITY_INDICATORS,
    QUALITY_PAGE,
    WARM_PRESETS,
    ResultCache,
    SharedResults,
    Warmer,
    code_version,
    shown_rows,
)
from dashboard.downloads import download
from dashboard.pages import BY_PATH, WARMED
from dashboard.state import PRESETS, FilterState, csv_filename, parse_query, to_query
from kpi.warehouse.aggregate import run_aggregation
from kpi.warehouse.indicators import INDICATORS, SUPPORT_QUERIES, Period, load_sql
from kpi.warehouse.reader import period_fingerprint
from tests import dashboard_world
from tests.dashboard_world import callback, data_of, find, log_in
from tests.helpers import SKILL, days_ago, event

# These tests send and aggregate events: a store of their own, not the session's.
world = dashboard_world.own_world


def test_result_cache_keeps_objects_within_a_row_budget():
    from kpi.warehouse.indicators import Result

    cache = ResultCache(default_timeout=60, row_budget=10)
    small, big = Result(("a",), [{"a": 1}] * 4), Result(("a",), [{"a": 2}] * 7)
    cache.set("small", small)
    assert cache.get("small") is small  # the object itself: no pickling on the way
    cache.set("big", big)  # 11 rows > 10: the least recently used goes
    assert cache.get("small") is None and cache.get("big") is big
    cache.set("gone", small, timeout=-1)
    assert cache.get("gone") is None
    assert cache.clear() and cache.get("big") is None


def test_the_code_version_changes_with_the_sql_and_the_python_it_covers(tmp_path):
    for name, text in (("sql/most_used.sql", "select 1"), ("kpi/run.py", "A = 1"),
                       ("dashboard/pages/page.py", "B = 1"), ("kpi/data/labels.csv", "a,b")):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    first = code_version(tmp_path)
    assert code_version(tmp_path) == first
    (tmp_path / "kpi/data/labels.csv").write_text("a,b,c")  # data, not code
    (tmp_path / "kpi/run.cpython-311.pyc").write_bytes(b"compiled")
    assert code_version(tmp_path) == first
    seen = {first}
    for name in ("sql/most_used.sql", "kpi/run.py", "dashboard/pages/page.py"):
        (tmp_path / name).write_text((tmp_path / name).read_text() + "\n-- changed")
        seen.add(code_version(tmp_path))
    assert len(seen) == 4


def test_a_shared_result_kept_by_another_version_is_not_read(tmp_path):
    before = SharedResults(tmp_path, version="1111")
    before.set("most_used_concepts 2026-Q3", ["a result"])
    before.flush()
    assert SharedResults(tmp_path, version="1111").get("most_used_concepts 2026-Q3") == [
        "a result"]
    after = SharedResults(tmp_path, version="2222")  # the same host after an upgrade
    assert after.get("most_used_concepts 2026-Q3") is None
    after.set("most_used_concepts 2026-Q3", ["its own result"])
    after.flush()
    assert after.get("most_used_concepts 2026-Q3") == ["its own result"]


def test_shared_results_keep_arrow_tables_and_ignore_what_they_did_not_pack(tmp_path, caplog):
    import pyarrow as pa

    results = SharedResults(tmp_path, version="1111")
    table = pa.table({"item_id": [f"i{n}" for n in range(5_000)], "events": range(5_000)})
    results.set("review_evidence_table", table)
    results.flush()
    assert SharedResults(tmp_path, version="1111").get("review_evidence_table").equals(table)
    # a file of the same key written otherwise (an older packing, or damaged): a miss
    results.disk.set("1111 review_evidence_table", b"x\x01 not packed", timeout=0)
    assert results.get("review_evidence_table") is None
    assert "shared dashboard result unreadable" in caplog.text


def test_a_shared_result_s_buffers_are_packed_apart_and_compressed():
    """Arrow's and numpy's buffers are packed out of the pickle, each compressed, and read back
    whole and aligned; a packed result cut short, or with bytes added, is refused."""
    import numpy as np
    import pyarrow as pa

    from dashboard.data import _pack, _unpack

    table = pa.table({"item_id": [f"i{n % 500}" for n in range(50_000)],
                      "events": range(50_000), "empty": pa.nulls(50_000, pa.string())})
    counts = np.zeros((6, 10_000), np.int64)
    counts[2, ::7] = 3
    value = {"table": table, "counts": counts, "rows": [{"kpi": "open", "current": 3}],
             "none": pa.table({"a": pa.array([], pa.int64())})}
    packed = _pack(value)
    assert len(packed) < (table.nbytes + counts.nbytes) / 2  # compressed
    back = _unpack(packed)
    assert back["table"].equals(table) and back["none"].equals(value["none"])
    assert (back["counts"] == counts).all() and back["rows"] == value["rows"]
    addresses = [b.address for column in back["table"].columns for chunk in column.chunks
                 for b in chunk.buffers() if b is not None]
    assert addresses and all(a % 8 == 0 for a in addresses)  # 64-bit values' alignment
    for damaged in (packed[:-8], packed[:40], packed + b"\0"):
        with pytest.raises(ValueError):
            _unpack(damaged)


def test_a_result_computed_while_the_worker_stops_is_kept_unshared(tmp_path):
    # a warm-up that finishes a query while the interpreter shuts down: its writer is gone
    results = SharedResults(tmp_path, version="1111")
    results._writer.shutdown()
    results.set("most_used_concepts 2026-Q3", ["a result"])  # no error, nothing written
    assert results.get("most_used_concepts 2026-Q3") is None


def test_prefetch_runs_a_page_s_queries_ahead_and_leaves_errors_to_the_page(app,
                                                                             monkeypatch):
    import threading

    from kpi.warehouse import indicators

    data = data_of(app)
    state = FilterState(preset="this_quarter", concept_type="skill")
    period = state.period()
    threads: set[str] = set()
    real = indicators.query

    def query(*args, **kwargs):
        threads.add(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(indicators, "query", query)
    names = ("most_used_concepts", "least_used_concepts", "catalogue_coverage")
    data.prefetch(*(lambda n=n: data.indicator(n, period, state) for n in names))
    assert threads and all(t.startswith("prefetch") for t in threads)

    def broken(*args, **kwargs):
        raise AssertionError("memoised answers are not computed again")

    monkeypatch.setattr(indicators, "query", broken)
    for name in names:  # the page's own calls find every answer memoised
        assert data.indicator(name, period, state).columns
    other = state.with_(concept_type="occupation")
    data.prefetch(lambda: data.indicator("most_used_concepts", other.period(), other),
                  lambda: data.indicator("least_used_concepts", other.period(), other))
    # nothing memoised for an answer that failed: the page's own call raises it
    with pytest.raises(AssertionError, match="not computed again"):
        data.indicator("most_used_concepts", other.period(), other)


def test_rendered_pages_are_counted_by_the_grid_rows_they_show(app):
    data = data_of(app)
    state = FilterState(preset="this_quarter")
    body = render_body(data, BY_PATH["concepts"], state)
    grids = find(body, lambda c: isinstance(getattr(c, "rowData", None), list))
    assert grids and shown_rows(body) == 1 + sum(len(g.rowData) for g in grids)
    assert shown_rows([]) == 1


def test_a_page_rendered_by_one_worker_is_served_by_the_others(world):
    first, second = data_of(create_dashboard(world.settings)), data_of(
        create_dashboard(world.settings))
    state = FilterState(preset="this_quarter", country="DE")
    body = render_body(first, BY_PATH["concepts"], state)

    def render_again() -> Any:
        raise AssertionError("rendered again in the second worker")

    shared = second.page("concepts", state, render_again)
    # shared as the JSON Dash sends, without the components themselves
    assert shared.parts == body.parts and shared.rows == body.rows and list(shared) == []
    assert [json.loads(part) for part in shared.parts] == to_plotly(body)
    # a CSV download likewise, once its copy is written (in the background: until then the
    # worker that built it serves it from memory)
    payload = download(first, "/dashboard/concepts", to_query(state), "most_used_concepts")
    assert payload and payload.filename == csv_filename("most_used_concepts", state)
    assert first.download("concepts", "most_used_concepts", state,
                          render_again) == payload.content
    first.pages.downloads.flush()
    assert second.download("concepts", "most_used_concepts", state,
                           render_again) == payload.content
    # a full disk (or any error writing the shared copy) only costs the sharing
    second.pages.disk._path = "/proc/no-such-folder"
    other = FilterState(preset="this_quarter", country="FR")
    assert render_body(second, BY_PATH["concepts"], other) is render_body(
        second, BY_PATH["concepts"], other)


def test_a_download_whose_copy_cannot_be_written_is_still_sent(world, caplog):
    """Writing a download's shared copy fails (a full disk): the click is answered all the
    same, the next click in that worker too, and the failure is logged."""
    data = data_of(create_dashboard(world.settings))
    state = FilterState(preset="this_quarter", country="FR")
    data.pages.disk._path = "/proc/no-such-folder"
    builds: list[int] = []

    def build() -> bytes:
        builds.append(1)
        return b"a,b\n"

    sent = data.download("concepts", "most_used_concepts", state, build)
    assert sent == b"a,b\n"
    data.pages.downloads.flush()
    assert "dashboard download not kept on disk" in caplog.text
    assert data.download("concepts", "most_used_concepts", state, build) == sent
    assert len(builds) == 2  # not kept: built again


def test_a_repeat_view_sends_the_json_kept_with_the_page(app):
    client = app.test_client()
    assert log_in(client).status_code == 302
    search = "?period=custom&start=2025-01-02&end=2026-12-30&country=DE"  # this test's own

    def view() -> Any:
        return callback(client, "content.children",
                        {"url.pathname": "/dashboard/concepts", "url.search": search})

    first = view()
    assert first.status_code == 200
    kept = data_of(app).page("concepts", parse_query(search), lambda: pytest.fail("not kept"))
    # the kept JSON is what encoding the components gives
    content = first.get_json()["response"]["content"]["children"]
    assert content[0]["props"]["id"] == "page-title"
    assert kept.parts and content[1:] == to_plotly(list(kept))
    # and a repeat view sends it as kept, byte for byte (marked here to tell it apart)
    kept.parts = (b'{"props":{"children":"kept"},"type":"P","namespace":"dash_html_components"}',
                  *kept.parts)
    again = view()
    assert again.status_code == 200 and all(part in again.data for part in kept.parts)
    assert again.get_json()["response"]["content"]["children"][1:] == [
        {"props": {"children": "kept"}, "type": "P", "namespace": "dash_html_components"},
        *content[1:]]


def to_plotly(body: Any) -> Any:
    """A body as Dash encodes it, parsed."""
    return json.loads(to_json_plotly(body))


def test_workers_take_turns_to_warm_up_and_render_each_view_once(world, monkeypatch):
    # nothing rendered yet on this host: no shared pages, two fresh workers
    shutil.rmtree(world.settings.data_dir / "cache" / "pages", ignore_errors=True)
    apps = [data_of(create_dashboard(world.settings)) for _ in range(2)]
    calls: list[str] = []
    for page in WARMED:
        # what renders a memoised page; what computes the Review page's queue (its `warm`
        # runs on every worker, and finds the first's queue)
        name = "review_queue" if page is BY_PATH["review"] else "render"
        original = getattr(page, name)

        def counting(data, state, page=page, original=original):
            calls.append(page.PATH)
            return original(data, state)

        monkeypatch.setattr(page, name, counting)
    lock = world.settings.data_dir / "cache" / "warm.lock"
    warmers = [Warmer(data, lambda path, state, data=data: warm_view(data, BY_PATH[path], state),
                      [p.PATH for p in WARMED], interval=0.05, lock=lock) for data in apps]
    for warmer in warmers:
        warmer.start()
    try:
        for _ in range(400):
            if all(w.rounds for w in warmers):
                break
            warmers[0].stopped.wait(0.05)
        assert all(w.rounds == 1 for w in warmers)
    finally:
        for warmer in warmers:
            warmer.stopped.set()
            warmer.join(timeout=30)
    # each view once on this host: the second worker found the first's (the Review page's
    # queue among them, through the shared results)
    assert sorted(calls) == sorted(p.PATH for p in WARMED for _ in WARM_PRESETS)
    assert "review" in calls


def test_new_aggregation_refreshes_the_cache(app, world):
    data = data_of(app)
    before = BY_PATH[""].tables(data, FilterState())["kpi_summary"].rows[0]["current"]
    world.send(world.key_a, [event("a9", concept_uri=SKILL, count=100)])
    assert BY_PATH[""].tables(data, FilterState())["kpi_summary"].rows[0]["current"] == before
    run_aggregation(world.settings)
    after = BY_PATH[""].tables(data, FilterState())["kpi_summary"].rows[0]["current"]
    assert after == before + 100


def test_a_run_that_touches_only_today_keeps_other_periods_cached(app, world):
    data = data_of(app)
    last_quarter = FilterState(preset="last_quarter")
    old = Period.custom(days_ago(400), days_ago(200))
    month = FilterState().period()
    before = (period_fingerprint(world.settings, old.start, old.end),
              period_fingerprint(world.settings, month.start, month.end))
    body = render_body(data, BY_PATH["concepts"], last_quarter)
    assert render_body(data, BY_PATH["concepts"], last_quarter) is body  # memo
    world.send(world.key_a, [event("fp1", concept_uri=SKILL, count=3)])
    run_aggregation(world.settings)
    assert period_fingerprint(world.settings, old.start, old.end) == before[0]
    assert period_fingerprint(world.settings, month.start, month.end) != before[1]
    assert render_body(data, BY_PATH["concepts"], last_quarter) is body  # today is not in it
    fresh = render_body(data, BY_PATH["concepts"], FilterState())
    assert render_body(data, BY_PATH["concepts"], FilterState()) is fresh


def test_new_data_quality_counts_keep_every_other_page_cached(app, world):
    data = data_of(app)
    state = FilterState()
    pages = {path: render_body(data, BY_PATH[path], state) for path in ("", "concepts", "quality")}
    before = (data.fingerprint(state.period()), data.fingerprint(state.period(), quality=True))
    # a rejected event and a duplicate: counted, nothing stored
    world.send(world.key_a, [event("dq1", language="xx"),
                             event("a1", concept_uri=SKILL, language="de", count=5,
                                   context="job_vacancy")])
    run_aggregation(world.settings)
    assert data.fingerprint(state.period()) == before[0]
    assert data.fingerprint(state.period(), quality=True) != before[1]
    for path in ("", "concepts"):
        assert render_body(data, BY_PATH[path], state) is pages[path]
    assert render_body(data, BY_PATH["quality"], state) is not pages["quality"]


def test_only_the_quality_indicators_read_the_quality_counters():
    # Data.fingerprint leaves quality_daily out for everything else
    for name in (*INDICATORS, *SUPPORT_QUERIES):
        reads = re.search(r"\bquality_daily\b", load_sql(name)) is not None
        assert reads == (name in QUALITY_INDICATORS), name
    assert BY_PATH[QUALITY_PAGE].TITLE == "Data quality"


def test_warmer_renders_every_default_view_after_each_run(world):
    app = create_dashboard(world.settings)
    data = data_of(app)
    rendered: list[tuple[str, str]] = []

    def render(path: str, state: FilterState) -> Any:
        rendered.append((path, state.preset))
        return warm_view(data, BY_PATH[path], state)

    warmer = Warmer(data, render, [p.PATH for p in WARMED], interval=0.05)
    warmer.start()
    try:
        for _ in range(200):
            if warmer.rounds:
                break
            warmer.stopped.wait(0.05)
        assert warmer.rounds == 1
        assert set(WARM_PRESETS) <= set(PRESETS)
        assert sorted(rendered) == sorted((p.PATH, preset) for p in WARMED
                                          for preset in WARM_PRESETS)
        # what a visitor asks next comes from the memo: the pages, and the Review page's
        # queue (the page itself is rendered per request)
        for p in WARMED:
            if getattr(p, "LIVE", False):
                assert p.queue_view(data, FilterState()) is p.queue_view(data, FilterState())
            else:
                assert render_body(data, p, FilterState()) is render_body(data, p, FilterState())
        assert BY_PATH["review"] in WARMED
        world.send(world.key_a, [event("warm1", concept_uri=SKILL)])
        run_aggregation(world.settings)
        for _ in range(200):
            if warmer.rounds == 2:
                break
            warmer.stopped.wait(0.05)
        assert warmer.rounds == 2  # a new snapshot: warmed again
    finally:
        warmer.stopped.set()
        warmer.join(timeout=30)
