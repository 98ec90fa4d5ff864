-- added_days: the days, not dirty, that hold events above the published watermark
-- ($published): the next publish adds their sums to those days' rollups.
select distinct day
from events
where watermark > $published
  and day not in (select day from dirty_days)
order by day
