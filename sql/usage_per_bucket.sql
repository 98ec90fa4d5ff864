-- usage_per_bucket: concept usage per day, ISO week or month within a period, and nothing
-- else: what usage_trend gives as `usage`, for a caller that needs no more (the Overview's
-- previous period, drawn beside the current one). Read from activity_daily, whose rows are a
-- fraction of usage_daily's (no concept in their key): a fifth of usage_trend's cost.
--
-- One row per bucket that has usage: bucket (the first day of the day, week or month, as a
-- date), usage (sum of `count` over concept_used events). Buckets without usage are absent.
--
-- Parameters: $start, $end (dates, inclusive), $grain ('day', 'week' or 'month'); filters
-- (NULL = all): $concept_type, $language, $country, $sector, $context.

with
used as (
    select day, usage
    from filtered_rows('activity_daily', $start, $end,
                       $concept_type, $language, $context, $country, $sector)
    where type = 'concept_used'
),

buckets as (
    select
        cast(date_trunc($grain, day) as date) as bucket,
        sum(usage) as usage
    from used
    group by bucket
)

select bucket, usage
from buckets
order by bucket
