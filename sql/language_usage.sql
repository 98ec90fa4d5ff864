-- language_usage: concept usage by language in a period.
--
-- usage: sum of `count` over concept_used events in that language; events; distinct
-- implementers; distinct concepts; share: usage / all usage of the (filtered) period, rounded
-- to 4 decimals. Ordered by usage descending, then language.
--
-- Parameters: $period (its bounds); filters (NULL = all): $concept_type,
-- $language, $country, $sector, $context.

with
used as (
    select language, concept_key, implementer_id, usage, events
    from filtered_span_rows('usage', $period,
                            $concept_type, $language, $context, $country, $sector)
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
