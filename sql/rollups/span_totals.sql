-- span_totals: the rows of a daily rollup summed over one month, or of a monthly rollup over
-- one quarter (usage_monthly, usage_quarterly, labels_monthly, ...): one row per key, the key
-- being every column but day, usage and events (the day is the span's first day, given by the
-- file's day= folder; a month's packed file, packed_days.sql, holds its rows' days). The same
-- sums as the days they cover, so an indicator reading a month's row instead of its days' rows
-- gives exactly the same answer. Sorted by the first key column (concept_key for most):
-- readers looking for one concept skip most of the file.
--
-- Parameters: $files, the published Parquet files of the span's days (the month's packed
-- files once it has them) or of its months.

select
    columns(lambda c: c not in ('day', 'usage', 'events')),
    sum(usage)::bigint as usage,
    sum(events)::bigint as events
from read_parquet($files, hive_partitioning = false)
group by all
order by 1
