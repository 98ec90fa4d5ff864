-- mark_batch_days_dirty: the days of a batch (the registered Arrow table `event_batch`) are
-- recomputed whole by the next publish (a large backlog: see kpi.warehouse.aggregate).
insert or ignore into dirty_days
select distinct day::date from event_batch
