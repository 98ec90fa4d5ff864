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
    select u.day, u.concept_key, u.implementer_id, u.usage, u.events
    from usage_daily as u
    left join implementers as i on i.id = u.implementer_id
    where u.day between $start and $end
      and ($concept_uri is null or u.concept_key = (
          select key from concept_keys where uri = $concept_uri))
      and ($concept_type is null or u.concept_type = $concept_type)
      and ($language is null or u.language = $language)
      and ($context is null or u.context = $context)
      and ($country is null or i.country = $country)
      and ($sector is null or i.sector = $sector)
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
