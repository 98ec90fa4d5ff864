-- packed_days: the day rows of a daily rollup gathered into one file per month (written
-- partitioned by `month`, the month's first day), `day` kept in the file: how a month's days
-- are published once the month has ended (see kpi.warehouse.published). A reader then opens
-- one file for the month instead of one per day. One row per key and day, as a recomputed
-- day has: the rows of every file given for a day are summed. Columns in the daily table's
-- order (day last), sorted by day and then by the first key column, so that a reader asking
-- for a few days skips the row groups of the others.
--
-- Parameters: $files, the files to gather: days' files (their day in the folder's name,
-- day=...) or months' packed files (under month=..., their day inside); never both kinds.

select
    columns(lambda c: c not in ('day', 'month', 'usage', 'events')),
    sum(usage)::bigint as usage,
    sum(events)::bigint as events,
    day,
    cast(date_trunc('month', day) as date) as month
from read_parquet($files, hive_partitioning = true)
group by all
order by day, 1
