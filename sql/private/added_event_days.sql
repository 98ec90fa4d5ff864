-- added_event_days: the days of the staged additions (added_events), oldest first.
select distinct day from added_events order by day
