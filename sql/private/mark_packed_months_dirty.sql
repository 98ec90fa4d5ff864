-- mark_packed_months_dirty: a packed month ($months: the first days of the months whose days
-- are published in one file, kpi.warehouse.published.PACKED) with a dirty day is recomputed
-- whole: every day of it that holds events becomes dirty, since its packed file is replaced
-- and holds the other days' rows only. Staged additions on the days made dirty are dropped:
-- those days are recomputed from all of their events (see changed_events).
insert or ignore into dirty_days
select distinct e.day
from events as e
where cast(date_trunc('month', e.day) as date) in (
    select cast(date_trunc('month', d.day) as date)
    from dirty_days as d
    where cast(date_trunc('month', d.day) as date) in (select unnest($months::date[]))
);

delete from added_events
where day in (select day from dirty_days);
