-- usage_trend: concept usage over time within a period, per day, ISO week or month.
--
-- One row per bucket that has usage: bucket (the first day of the day, week or month, as a
-- date; the first and last buckets may reach outside the period, their figures do not),
-- usage (sum of `count` over concept_used events), events, distinct implementers and
-- distinct concepts. Buckets without usage are absent: the reader fills them with zeros.
-- With $concept_uri set, only that concept's usage (the dashboard's concept page).
--
-- Parameters: $start, $end (dates, inclusive), $grain ('day', 'week' or 'month'),
-- $concept_uri (NULL = all concepts); filters (NULL = all): $concept_type, $language,
-- $country, $sector, $context.

with
filtered as (
    select day, concept_key, implementer_id, usage, events
    from filtered_rows('usage_daily', $start, $end,
                       $concept_type, $language, $context, $country, $sector)
    where $concept_uri is null or concept_key = concept_key_of($concept_uri)
),

buckets as (
    select
        cast(date_trunc($grain, day) as date) as bucket,
        sum(usage) as usage,
        sum(events) as events,
        count(distinct implementer_id) as implementers,
        count(distinct concept_key) as concepts
    from filtered
    group by bucket
)

select bucket, usage, events, implementers, concepts
from buckets
order by bucket
