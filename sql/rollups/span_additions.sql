-- span_additions: the rows a publish added to a daily rollup's days (the new files of those
-- days) summed per month or per quarter ($span): what the run adds to the sums of each closed
-- month and quarter, written as a new file beside them (partitioned by the span's first day).
-- Columns as span_totals gives them. With $span 'day', files of days, months or quarters are
-- summed per part as they are: how a part's added files are merged into one.
--
-- Parameters: $files, the new files of the added days (or the files to merge); $span,
-- 'month', 'quarter' or 'day'.

select
    * exclude (day, usage, events),
    sum(usage)::bigint as usage,
    sum(events)::bigint as events,
    cast(date_trunc($span, day) as date) as day
from read_parquet($files, hive_partitioning = true, hive_types = {'day': 'date'},
                  hive_types_autocast = false)
group by all
order by 1
