"""Month and quarter rollups: the sums of their days, rewritten with them, and every indicator
over them gives exactly what the days give, for random periods and filters."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from kpi.warehouse import published
from kpi.warehouse.indicators import (
    FILTERS,
    INDICATORS,
    SUPPORT_QUERIES,
    Period,
    applicable_filters,
    load_sql,
    query,
    run_support_query,
)
from kpi.warehouse.models import parameters
from kpi.warehouse.published import SPAN_ROLLUPS, read_manifest
from kpi.warehouse.reader import SHARED_IN_MEMORY, install_span_views, open_reader
from kpi.warehouse.spans import MAX_DAYS_OUT, span_bounds
from tests.kpi_fixtures import O1, O2, S1, S2, S3, S4, standard_store

TYPES = ("concept_used", "concept_used", "label_added", "concept_proposed",
         "translation_feedback")
LABELS = ("Programmierer", "coder", "Café-Bar", "cafe bar", "Straße", "STRASSE", "data wizard",
          "Python (Computerprogrammierung)", "python programming", "!!")
FIRST, LAST = date(2026, 2, 10), date(2026, 11, 20)

# span_rows (and two_span_rows) as they would be without month and quarter rows: every day
# read from its day's rows
DAYS_ONLY = """
create or replace macro span_rows(rollup, span, only_country, only_sector)
as table
    select r.*, i.name as implementer, i.country, i.sector
    from query_table(rollup || '_daily') as r
    left join implementers as i on i.id = r.implementer_id
    where r.day between span['from_day'] and span['to_day']
      and (only_country is null or i.country = only_country)
      and (only_sector is null or i.sector = only_sector);

create or replace macro two_span_rows(
    rollup, previous_span, span,
    only_concept_type, only_language, only_context, only_country, only_sector
) as table
    select r.*, r.day <= previous_span['to_day'] as previous, i.name as implementer, i.country,
           i.sector
    from query_table(rollup || '_daily') as r
    left join implementers as i on i.id = r.implementer_id
    where (r.day between previous_span['from_day'] and previous_span['to_day']
           or r.day between span['from_day'] and span['to_day'])
      and (only_country is null or i.country = only_country)
      and (only_sector is null or i.sector = only_sector)
      and in_filters(r.concept_type, r.language, r.context,
                     only_concept_type, only_language, only_context)
"""


def event_days(first: date, last: date) -> list[date]:
    """The days events fall on: each month's first two and last two days and its 15th, the
    edges that months and quarters meet at. Every day of the range would make a reader's views
    span hundreds of files, and each query's planning, not its data, the cost of these tests.
    """
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [d for d in days
            if d.day in (1, 2, 15) or (d + timedelta(days=2)).month != d.month] or [first]


def random_events(n: int, seed: int, first: date = FIRST, last: date = LAST
                  ) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    days = event_days(first, last)
    out = []
    for _ in range(n):
        kind = rnd.choice(TYPES)
        row: dict[str, Any] = {
            "type": kind, "day": rnd.choice(days),
            "implementer_id": rnd.randint(1, 3), "language": rnd.choice(("en", "de", "fr")),
            "context": rnd.choice(("cv", "search", "job_vacancy")),
            "count": rnd.randint(1, 4), "concept_uri": rnd.choice((O1, O2, S1, S2, S3, S4))}
        if kind != "concept_used":
            row["label"] = rnd.choice(LABELS)
        if kind == "concept_proposed":
            row["concept_type"] = rnd.choice(("occupation", "skill"))
            row["concept_uri"] = rnd.choice((O1, S2, None))
        out.append(row)
    return out


def random_period(rnd: random.Random) -> Period:
    """Whole months or quarters half of the time (what the month and quarter rows serve),
    else any days, some reaching outside the data."""
    if rnd.random() < 0.5:
        start = date(2026, rnd.randint(1, 11), 1)
        end = Period.month(date(2026, rnd.randint(start.month, 12), 1)).end
        return Period(start, end)
    start = FIRST - timedelta(days=20) + timedelta(days=rnd.randint(0, 300))
    return Period(start, start + timedelta(days=rnd.randint(0, 200)))


def random_filters(rnd: random.Random) -> dict[str, Any]:
    choices = {"concept_type": ("occupation", "skill"), "language": ("en", "de"),
               "country": ("DE", "FR"), "sector": ("pes", "job_portal"),
               "context": ("cv", "search")}
    return {name: rnd.choice(values) for name, values in choices.items() if rnd.random() < 0.3}


def random_states(seed: int, count: int = 20) -> Iterator[tuple[Period, dict[str, Any],
                                                                 dict[str, Any]]]:
    """`count` random (period, filters, parameters): the parameters a support query takes for
    them, every filter given (None where not set)."""
    rnd = random.Random(seed)
    for _ in range(count):
        period, filters = random_period(rnd), random_filters(rnd)
        yield period, filters, {"start": period.start, "end": period.end, **{
            f: None for f in ("concept_type", "language", "country", "sector", "context")},
            **filters}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = standard_store(tmp_path_factory.mktemp("grains"))
    store.events(*random_events(1500, seed=11))
    store.aggregate()
    # a second run: late events on old days and new ones (months and quarters rewritten)
    store.events(*random_events(300, seed=12), *random_events(20, seed=13, last=FIRST))
    store.aggregate()
    yield store
    store.engine.dispose()


def rows_of(con, sql: str) -> list[tuple]:
    return sorted(con.execute(sql).fetchall(), key=repr)


def closed_spans(rollups: dict[str, Any], name: str) -> set[str]:
    """The months (or quarters) that have days and have ended before this month."""
    span = SPAN_ROLLUPS[name][1]
    daily = f"{name.rsplit('_', 1)[0]}_daily"
    # the current month's days, and the ended months (their first days) whose days are packed
    parts = [*rollups.get(daily, {}), *rollups.get(f"{daily}_packed", {})]
    starts = {published.span_start(d, span) for d in parts}
    return {s for s in starts if published.span_closed(s, span, date.today())}


def test_which_months_and_quarters_have_ended():
    today = date(2026, 12, 1)
    assert published.span_closed("2026-11-01", "month", today)
    assert not published.span_closed("2026-12-01", "month", today)
    assert published.span_closed("2026-07-01", "quarter", today)
    assert not published.span_closed("2026-10-01", "quarter", today)
    assert published.span_closed("2026-10-01", "quarter", date(2027, 1, 1))
    assert published.span_start("2026-11-30", "quarter") == "2026-10-01"


def spans_inside(first: date, last: date) -> dict[str, Any]:
    """Counted span by span: the whole quarters and the whole months inside first..last (their
    first and last days, or None), and whether it holds a whole quarter, a whole month outside
    its whole quarters, a day outside its whole months (what span_rows reads of each grain)."""
    def spans(months: int) -> list[tuple[date, date]]:
        """The spans of `months` months (from January) inside first..last."""
        out, start = [], date(first.year, 1, 1)
        while start <= last:
            following = date(start.year + (start.month - 1 + months) // 12,
                             (start.month - 1 + months) % 12 + 1, 1)
            if first <= start and following - timedelta(days=1) <= last:
                out.append((start, following - timedelta(days=1)))
            start = following
        return out

    quarters, months = spans(3), spans(1)
    in_quarters = {m for m in months if any(q[0] <= m[0] <= q[1] for q in quarters)}
    return {
        "quarters": (quarters[0][0], quarters[-1][1]) if quarters else None,
        "months": (months[0][0], months[-1][1]) if months else None,
        "has_quarters": bool(quarters),
        "has_months": len(months) > len(in_quarters),
        # whole months are consecutive: a day outside them lies before or after them all
        "has_days": not months or first < months[0][0] or last > months[-1][1],
    }


def test_span_bounds_are_the_calendar_s():
    """span_bounds (what span_rows reads a period by): for every start day of two years and
    ends from the same day to over a year later, the whole quarters and months and the grains
    the period holds, as the calendar counts them."""
    starts = [date(2025, 12, 1) + timedelta(days=i) for i in range(731)]
    lengths = (0, 1, 2, 27, 28, 29, 30, 31, 58, 59, 60, 61, 62, 88, 89, 90, 91, 92, 120,
               181, 182, 183, 184, 273, 364, 365, 366, 400)
    for first in starts:
        for n in lengths:
            last = first + timedelta(days=n)
            bounds, counted = span_bounds(first, last), spans_inside(first, last)
            for grain in ("quarters", "months"):
                span = (bounds[f"{grain}_from"], bounds[f"{grain}_to"])
                # no whole span: the bounds cross, so `day between` them holds no day
                assert span == counted[grain] if counted[grain] else span[0] > span[1], (
                    first, last, grain)
            assert ({k: bounds[k] for k in ("has_quarters", "has_months", "has_days")}
                    == {k: counted[k] for k in ("has_quarters", "has_months", "has_days")}), (
                first, last)
            assert (bounds["from_day"], bounds["to_day"]) == (first, last)


def test_two_span_rows_reads_each_day_of_a_period_once():
    """The spans two_span_rows reads a period from (span_bounds): its whole quarters, its whole
    months, its complemented months less their days outside it, and its other days, count
    every day of the period once and no other day, for periods of up to a quarter starting on
    every day of two years; a month is complemented only when it has ended and at most
    MAX_DAYS_OUT of its days lie outside the period."""
    def days(first: date, last: date) -> list[date]:
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    today = date(2026, 11, 30)
    complemented = 0
    for first in days(date(2025, 12, 1), date(2027, 11, 30)):
        for n in (0, 1, 2, 20, 23, 24, 25, 27, 28, 29, 30, 31, 58, 60, 89, 91):
            last = first + timedelta(days=n)
            b = span_bounds(first, last, today)
            counted: dict[date, int] = {}
            quarters = set(days(b["quarters_from"], b["quarters_to"]))
            months = set(days(b["months_from"], b["months_to"]))
            summed = {b["complemented_first"], b["complemented_last"]} - {date(1, 1, 1)}
            for day in quarters | (months - quarters):
                counted[day] = counted.get(day, 0) + 1
            for month in summed:
                assert month < today.replace(day=1), (first, last)
                for day in days(month, Period.month(month).end):
                    counted[day] = counted.get(day, 0) + 1
            out = days(b["out1_from"], b["out1_to"]) + days(b["out2_from"], b["out2_to"])
            assert 0 < len(out) <= 2 * MAX_DAYS_OUT if summed and b["has_days_out"] else not out
            for day in out:
                counted[day] = counted.get(day, 0) - 1
            for day in days(b["plain_from"], b["plain_to"]):
                if day not in months:
                    counted[day] = counted.get(day, 0) + 1
            assert {d: c for d, c in counted.items() if c} == dict.fromkeys(
                days(first, last), 1), (first, last)
            complemented += bool(summed)
    assert complemented > 1000


def test_month_and_quarter_rows_are_the_sums_of_their_days(store):
    con = store.reader()
    try:
        rollups = read_manifest(store.settings)["rollups"]
        assert not published.missing_spans(rollups)
        for name, (source, span) in SPAN_ROLLUPS.items():
            # the months and quarters that have ended have sums; the current ones do not
            assert set(rollups[name]) == closed_spans(rollups, name), name
            assert published.span_closed("2026-07-01", span, date(2026, 10, 1))
            assert not published.span_closed("2026-10-01", span, date(2026, 10, 31))
            # table names and the span come from the constants of kpi.warehouse.published
            expected = rows_of(con, f"""
                select * exclude (usage, events, day), sum(usage)::bigint as usage,
                       sum(events)::bigint as events,
                       cast(date_trunc('{span}', day) as date) as day
                from {source} group by all""")
            got = rows_of(con, f"""
                select * exclude (usage, events, day), sum(usage)::bigint as usage,
                       sum(events)::bigint as events, day
                from {name} group by all""")
            assert got == expected and expected, name
            # the published sums: one row per key and span in each file (a span's later
            # files hold what runs added to its days since)
            files = [str(published.published_dir(store.settings) / f)
                     for fs in rollups[name].values() for f in fs]
            assert con.execute("""
                select count(*) from (
                    select * exclude (usage, events)
                    from read_parquet($files, hive_partitioning = true, filename = true)
                    group by all having count(*) > 1)""", {"files": files}).fetchall() == [(0,)]
    finally:
        con.close()


def test_month_and_quarter_tables_have_the_daily_columns_before_and_after_a_run(store,
                                                                              tmp_path):
    fresh = standard_store(tmp_path / "fresh")
    try:
        for settings_of in (fresh, store):
            con = settings_of.reader()
            try:
                for name in SPAN_ROLLUPS:
                    daily = f"{name.rsplit('_', 1)[0]}_daily"
                    # table names come from the constants of kpi.warehouse.published
                    assert [(n, t.lower()) for n, t, *_ in con.execute(
                        f"describe {name}").fetchall()] == list(published.SCHEMAS[daily])
            finally:
                con.close()
    finally:
        fresh.engine.dispose()


def run_all(con, period: Period, filters: dict[str, Any]) -> dict[str, Any]:
    """Every indicator and support query, with the filters each applies."""
    out: dict[str, Any] = {}
    for name in INDICATORS:
        usable = {k: v for k, v in filters.items() if k in applicable_filters(name)}
        out[name] = query(con, name, period, label_language="de", **usable).tuples()
    previous = period.previous()
    base = {"start": period.start, "end": period.end, "prev_start": previous.start,
            "prev_end": previous.end, "label_language": "de", "concept_uri": S1,
            "implementer_id": None, **{f: None for f in FILTERS if f != "concept_uri"},
            **filters}
    for name in SUPPORT_QUERIES:
        grains = ("day", "week", "month") if "grain" in parameters(load_sql(name)) else (None,)
        for grain in grains:
            # run_support_query takes what the query names, and its period's span bounds
            out[f"{name}/{grain}"] = run_support_query(con, name, {**base, "grain": grain}
                                                       ).tuples()
    return out


def test_every_indicator_gives_the_same_rows_as_over_the_days(store):
    spans, days = store.reader(), store.reader()
    days.execute(DAYS_ONLY)
    rnd = random.Random(5)
    try:
        for _ in range(25):
            period, filters = random_period(rnd), random_filters(rnd)
            got, expected = run_all(spans, period, filters), run_all(days, period, filters)
            for name in expected:
                assert got[name] == expected[name], (name, str(period), filters)
        # the whole data set, unfiltered: every row of every kind counted
        assert run_all(spans, Period(date(2026, 1, 1), date(2026, 12, 31)), {}) == run_all(
            days, Period(date(2026, 1, 1), date(2026, 12, 31)), {})
    finally:
        spans.close()
        days.close()


@pytest.mark.parametrize("rollup", ["usage", "labels", "proposals", "feedback", "activity"])
def test_two_periods_read_at_once_are_each_period_s_rows(store, rollup):
    """two_span_rows gives the sums filtered_span_rows gives for the previous period and for
    the period, each marked as of its period, in every filter: per every other column, the
    same usage and events. A month it reads as its sums less some days (complemented) has
    rows outside the period, negated, and the sums are still the period's."""
    con = store.reader()
    compared = negated = 0
    # September's previous period is 2-31 August (August less a day), and 3-28 September is
    # September less two days at each end: complemented; the rest at random
    fixed = [(Period(date(2026, 9, 1), date(2026, 9, 30)), {}),
             (Period(date(2026, 9, 3), date(2026, 9, 28)), {"country": "DE"})]
    states = [(period, filters, {"start": period.start, "end": period.end, **{
        f: None for f in ("concept_type", "language", "country", "sector", "context")},
        **filters}) for period, filters in fixed]
    try:
        for period, filters, params in [*states, *random_states(seed=len(rollup))]:
            previous = period.previous()
            args = {"rollup": rollup, **{k: v for k, v in params.items()
                                         if k not in ("start", "end")},
                    "previous": span_bounds(previous.start, previous.end),
                    "period": span_bounds(period.start, period.end)}
            filter_args = "$concept_type, $language, $context, $country, $sector"
            sums = ("select previous, * exclude (previous, usage, events, day), "
                    "sum(usage) as usage, sum(events) as events from ({}) group by all "
                    "having sum(usage) <> 0 or sum(events) <> 0")
            both = f"select * from two_span_rows($rollup, $previous, $period, {filter_args})"
            apart = (f"select *, true as previous from filtered_span_rows($rollup, $previous, "
                     f"{filter_args}) union all select *, false from filtered_span_rows("
                     f"$rollup, $period, {filter_args})")
            got = con.execute(sums.format(both), args).fetchall()
            assert sorted(got, key=repr) == sorted(con.execute(sums.format(apart), args)
                                                   .fetchall(), key=repr), (
                rollup, str(period), filters)
            compared += len(got)
            negated += con.execute(f"select count(*) from ({both}) where events < 0",
                                   args).fetchone()[0]
        assert compared > 100  # most states have rows
        assert negated > 0  # and some read a month less some days
    finally:
        con.close()


def test_a_kept_reader_holds_the_catalogue_labels_that_events_sent(store):
    """used_label_norms: in a reader kept for many queries (a dashboard worker's), exactly the
    catalogue's label norms that some label_added event's label has, for its concept and
    language; in a reader opened for one query, every norm of the catalogue. Every indicator
    and support query gives the same rows with either."""
    kept_reader = open_reader(store.settings, in_memory=SHARED_IN_MEMORY)
    fresh = store.reader()
    norms = "select concept_key, language, label_norm from "
    try:
        kept = set(kept_reader.execute(norms + "used_label_norms").fetchall())
        sent = set(kept_reader.execute(
            norms + "concept_label_norms join (select distinct concept_key, language, "
            "label_norm from labels_daily) using (concept_key, language, label_norm)").fetchall())
        catalogue = set(fresh.execute(norms + "concept_label_norms").fetchall())
        assert kept == sent and 0 < len(kept) < len(catalogue)
        assert set(fresh.execute(norms + "used_label_norms").fetchall()) == catalogue
        rnd = random.Random(8)
        for _ in range(6):
            period, filters = random_period(rnd), random_filters(rnd)
            assert run_all(kept_reader, period, filters) == run_all(fresh, period, filters), (
                str(period), filters)
        whole = Period(date(2026, 1, 1), date(2026, 12, 31))
        answers = run_all(kept_reader, whole, {})
        assert answers == run_all(fresh, whole, {})
        assert answers["candidate_alt_labels"]  # candidates, and labels the catalogue has, too
    finally:
        kept_reader.close()
        fresh.close()


def test_span_views_of_the_days_alone_give_the_same_answers(store):
    # what a warehouse built in memory from SCHEMAS (bench/trends.py) reads through
    spans, days = store.reader(), store.reader()
    install_span_views(days)
    try:
        period = Period(date(2026, 3, 1), date(2026, 9, 30))
        assert run_all(spans, period, {}) == run_all(days, period, {})
    finally:
        spans.close()
        days.close()


def test_review_item_months_read_from_month_sums_are_what_the_days_give(store):
    """sql/review_item_months.sql reads the month tables: a month that has ended from its
    sums, the others from their days. The same rows as from the days alone, from any first
    month, and also when the newest ended month has no sums yet (the run that writes them has
    not come)."""
    from kpi.review.items import item_months_table

    since = [date(2026, m, 1) for m in (1, 2, 5, 9, 10, 11, 12)]
    expected = {first: item_months_days(store, first) for first in since}
    assert expected[date(2026, 2, 1)] and not expected[date(2026, 12, 1)]
    for first in since:
        assert item_months(item_months_table(store.settings, first)) == expected[first], first
    with pytest.raises(ValueError, match="first day of a month"):
        item_months_table(store.settings, date(2026, 5, 2))

    # the labels' newest month without its sums: read from its days
    path = published.published_dir(store.settings) / published.MANIFEST
    kept = path.read_text()
    manifest = json.loads(kept)
    newest = max(manifest["rollups"]["labels_monthly"])
    assert newest >= "2026-10-01"
    del manifest["rollups"]["labels_monthly"][newest]
    path.write_text(json.dumps(manifest))
    try:
        got = item_months(item_months_table(store.settings, date(2026, 2, 1)))
        assert got == expected[date(2026, 2, 1)]
        assert any(r["kind"] == "label" and r["month"].isoformat() == newest for r in got)
    finally:
        path.write_text(kept)


def item_months(table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=repr)


# review_item_months over the days: each item's distinct implementers per month of its days
ITEM_MONTHS_OF_DAYS = """
with
sent as (
    select 'label' as kind, concept_key, null::varchar as concept_type, language, label_norm,
           implementer_id, day
    from labels_daily
    union all
    select 'proposal', null, concept_type, language, label_norm, implementer_id, day
    from proposals_daily
    union all
    select 'translation', concept_key, null, language, label_norm, implementer_id, day
    from feedback_daily
)
select review_item_id(s.kind, ck.uri, s.concept_type, s.language, s.label_norm) as item_id,
       s.kind, ck.uri as concept_uri, s.concept_type, s.language, s.label_norm,
       date_trunc('month', s.day)::date as month,
       count(distinct s.implementer_id) as implementers
from sent as s
left join concept_keys as ck on ck.key = s.concept_key
where s.label_norm <> '' and s.day >= $since
group by all
"""


def item_months_days(store, since: date) -> list[dict[str, Any]]:
    """review_item_months computed from the days alone (ITEM_MONTHS_OF_DAYS)."""
    con = store.reader()
    try:
        return item_months(con.sql(ITEM_MONTHS_OF_DAYS, params={"since": since})
                           .to_arrow_table())
    finally:
        con.close()


def test_usage_per_bucket_is_the_usage_of_the_trend(store):
    """What the Overview draws for the previous period (from activity_daily) is the usage
    column of usage_trend (from usage_daily), for every grain, period and filter."""
    con = store.reader()
    try:
        for period, filters, base in random_states(9):
            for grain in ("day", "week", "month"):
                trend = run_support_query(con, "usage_trend", {
                    **base, "grain": grain, "concept_uri": None}).tuples()
                usage = run_support_query(con, "usage_per_bucket", {**base, "grain": grain})
                assert usage.tuples() == [(r[0], r[1]) for r in trend], (period, filters)
                assert usage.columns == ("bucket", "usage")
    finally:
        con.close()


def test_usage_per_language_is_the_usage_of_language_usage(store):
    """What the Overview's chart draws per language (from the activity rollup) is the usage
    column of language_usage (from the usage rollup), in its order, for every period and
    filter."""
    con = store.reader()
    try:
        for period, filters, params in random_states(10):
            usage = run_support_query(con, "usage_per_language", params)
            assert usage.columns == ("language", "usage")
            assert usage.tuples() == [(r["language"], r["usage"]) for r in query(
                con, "language_usage", period, **filters).rows], (str(period), filters)
    finally:
        con.close()


def test_kpi_counts_count_the_lists(store):
    """The Overview cards' figures are what the lists and indicators they sum give."""
    con = store.reader()
    try:
        for period, filters, params in random_states(8):
            counts = run_support_query(con, "kpi_counts", params).rows[0]
            uptake = [r for r in query(con, "implementer_uptake", period, **filters).rows
                      if r["dimension"] == "country"]
            coverage = query(con, "catalogue_coverage", period, **filters).rows
            assert counts == {
                "candidate_labels": len(query(con, "candidate_alt_labels", period,
                                              **filters).rows),
                "proposals": len(query(con, "new_concept_proposals", period, **filters).rows),
                "feedback_events": sum(r["events"] for r in query(
                    con, "translation_feedback", period, **filters).rows),
                "implementers": sum(r["active_implementers"] for r in uptake),
                "countries": len({r["value"] for r in uptake if r["value"]}),
                "concepts": sum(r["concepts"] for r in coverage),
                "used_concepts": sum(r["used"] for r in coverage),
            }, (str(period), filters)
            assert counts["implementers"] and counts["concepts"], (str(period), filters)
    finally:
        con.close()


def test_a_late_event_rewrites_its_month_and_quarter_only(tmp_path):
    store = standard_store(tmp_path / "late")
    try:
        store.events(*random_events(200, seed=3))
        store.aggregate()
        before = read_manifest(store.settings)["rollups"]
        store.events({"day": "2026-05-20", "count": 3})
        store.aggregate()
        after = read_manifest(store.settings)["rollups"]
        changed = {(table.rsplit("_", 1)[1], key) for table, spans in after.items()
                   for key, files in spans.items() if before.get(table, {}).get(key) != files}
        # the day's month has ended: its packed days get one more file, as its sums do
        assert changed == {("packed", "2026-05-01"), ("monthly", "2026-05-01"),
                           ("quarterly", "2026-04-01")}
        assert {t for t, spans in after.items() if spans != before.get(t)} >= {
            "usage_daily_packed", "usage_monthly", "usage_quarterly"}
    finally:
        store.engine.dispose()


def test_a_warehouse_published_without_them_answers_the_same_and_gets_them(tmp_path):
    store = standard_store(tmp_path / "old")
    try:
        store.events(*random_events(400, seed=21))
        store.aggregate()
        period = Period(date(2026, 4, 1), date(2026, 9, 30))
        con = store.reader()
        expected = run_all(con, period, {})
        con.close()
        # as an earlier version published it: daily rollups only
        path = published.published_dir(store.settings) / published.MANIFEST
        manifest = json.loads(path.read_text())
        manifest["rollups"] = {t: d for t, d in manifest["rollups"].items()
                               if t not in SPAN_ROLLUPS}
        path.write_text(json.dumps(manifest))
        con = store.reader()
        assert run_all(con, period, {}) == expected  # the sums computed from the days
        con.close()
        # the next run writes every month and quarter, without new events
        assert store.aggregate().events_read == 0
        spans = read_manifest(store.settings)["rollups"]
        assert not published.missing_spans(spans)
        for name in SPAN_ROLLUPS:
            assert set(spans[name]) == closed_spans(spans, name) != set()
        spans_con, days_con = store.reader(), store.reader()
        days_con.execute(DAYS_ONLY)
        assert run_all(spans_con, period, {}) == run_all(days_con, period, {})
        spans_con.close()
        days_con.close()
    finally:
        store.engine.dispose()
