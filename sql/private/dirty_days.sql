-- dirty_days: the days whose rollups the next publish rewrites, oldest first.
select day from dirty_days order by day
