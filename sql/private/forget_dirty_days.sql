-- forget_dirty_days: every dirty day is published (run once the manifest names its files).
delete from dirty_days
