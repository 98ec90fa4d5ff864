-- forget_published_changes: the dirty days and the added events are published (run once the
-- manifest names their files).
delete from dirty_days;

delete from added_events;
