-- mark_packed_months_dirty: a packed month ($months: the first days of the months whose days
-- are published in one file, kpi.warehouse.published.PACKED) with a dirty day is recomputed
-- whole: every day of it that holds events becomes dirty, since its packed file is replaced
-- and holds the other days' rows only. Staged additions on the days made dirty are dropped:
-- those days are recomputed from all of their events (see changed_events).
insert or ignore into dirty_days
with
packed_months as (
    select unnest($months::date[]) as month
),

-- the packed months that hold a dirty day (none, mostly: the events scan below is then
-- skipped)
recomputed_months as (
    select distinct cast(date_trunc('month', d.day) as date) as month
    from dirty_days as d
    semi join packed_months as p on p.month = cast(date_trunc('month', d.day) as date)
)

select distinct e.day
from events as e
semi join recomputed_months as m on m.month = cast(date_trunc('month', e.day) as date);

delete from added_events
where day in (select day from dirty_days);
