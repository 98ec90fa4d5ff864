-- language_usage: concept usage by language in a period.
--
-- usage: sum of `count` over concept_used events in that language; events; distinct
-- implementers; distinct concepts; share: usage / all usage of the (filtered) period, rounded
-- to 4 decimals. Ordered by usage descending, then language.
--
-- Parameters: $start, $end (dates, inclusive); filters (NULL = all): $concept_type,
-- $language, $country, $sector, $context.

with
used as (
    select u.language, u.concept_key, u.implementer_id, u.usage, u.events
    from usage_daily as u
    left join implementers as i on i.id = u.implementer_id
    where u.day between $start and $end
      and ($concept_type is null or u.concept_type = $concept_type)
      and ($language is null or u.language = $language)
      and ($context is null or u.context = $context)
      and ($country is null or i.country = $country)
      and ($sector is null or i.sector = $sector)
),

by_language as (
    select
        language,
        sum(usage) as usage,
        sum(events) as events,
        count(distinct implementer_id) as implementers,
        count(distinct concept_key) as concepts
    from used
    group by language
)

select
    language,
    usage,
    events,
    implementers,
    concepts,
    round(usage / sum(usage) over (), 4) as share
from by_language
order by usage desc, language
