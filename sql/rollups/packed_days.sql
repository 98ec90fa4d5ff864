-- packed_days: the day rows of a daily rollup gathered into one file per month (written
-- partitioned by `month`, the month's first day), `day` kept in the file: how a month's days
-- are published once the month has ended (see kpi.warehouse.published). A reader then opens
-- one file for the month instead of one per day. The rows are copied as they are, in the
-- order of the files given (by day: a reader asking for a few days skips the row groups of
-- the others); a key may have several rows on a day (a day's added rows), which readers sum
-- as they sum a day's files. Columns in the daily table's order (day last).
--
-- Parameters: $files, the files to gather: days' files (their day in the folder's name,
-- day=...) or months' packed files (under month=..., their day inside); never both kinds.

select
    columns(lambda c: c not in ('day', 'month', 'usage', 'events')),
    usage,
    events,
    day,
    cast(date_trunc('month', day) as date) as month
from read_parquet($files, hive_partitioning = true)
