-- mark_unpublished_days_dirty: the days holding events above the published watermark
-- ($published) are recomputed whole by the next publish (after a large backlog: see
-- kpi.warehouse.aggregate).
insert or ignore into dirty_days
select distinct day
from events
where watermark > $published
