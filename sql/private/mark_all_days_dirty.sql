-- mark_all_days_dirty: every day that holds events is republished by the next run (used when
-- an older warehouse format is upgraded and its rollups must be rewritten).
insert or ignore into dirty_days
select distinct day from events
