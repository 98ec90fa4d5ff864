-- mark_days_dirty: the next publish recomputes these days whole ($days, a list of dates: the
-- days of a large batch, or days that have as many files as a day may hold).
insert or ignore into dirty_days
select distinct unnest($days::date[])
