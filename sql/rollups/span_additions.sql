-- span_additions: the rows a publish added to a daily rollup's days (its new packed files of
-- the ended months those days are in) summed per month or per quarter ($span): what the run
-- adds to the sums of each closed month and quarter, written as a new file beside them
-- (partitioned by the span's first day). Columns as span_totals gives them. With $span 'day',
-- files of days, months or quarters are summed per part as they are: how a part's added
-- files are merged into one. The day comes from the file's folder (day=...) or, in a packed
-- file (under month=...), from the file itself.
--
-- Parameters: $files, this run's packed files of the added days' months (or the files to
-- merge, all of one kind); $span, 'month', 'quarter' or 'day'.

select
    columns(lambda c: c not in ('day', 'month', 'usage', 'events')),
    sum(usage)::bigint as usage,
    sum(events)::bigint as events,
    cast(date_trunc($span, day) as date) as day
from read_parquet($files, hive_partitioning = true)
group by all
order by 1
