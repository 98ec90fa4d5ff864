-- least_used_concepts: which concepts of the catalogue are used least in a period, including
-- those never used (usage 0).
--
-- Every occupation and skill of the newest loaded catalogue version, with its usage (sum of
-- `count` over concept_used events), distinct implementers and events in the period, ordered by
-- usage ascending, then concept URI. label_en: English preferred label; label: preferred label
-- in $label_language where the catalogue has one, else the English one.
--
-- Parameters: $period (its bounds), $label_language; filters (NULL = all):
-- $concept_type (occupation or skill; another type gives no rows), $language, $country,
-- $sector, $context.

with
catalogue as (
    select uri, concept_type
    from newest_concepts($concept_type)
    where concept_type in ('occupation', 'skill')
),

-- the concept_type filter applies to the catalogue above, not to the usage rows
used_keys as (
    select
        concept_key,
        sum(usage) as usage,
        sum(events) as events,
        count(distinct implementer_id) as implementers
    from filtered_span_rows('usage', $period, null, $language, $context, $country, $sector)
    group by concept_key
),

used as (
    select ck.uri as concept_uri, s.usage, s.events, s.implementers
    from used_keys as s
    join concept_keys as ck on ck.key = s.concept_key
)

select
    c.uri as concept_uri,
    c.concept_type,
    en.label as label_en,
    coalesce(chosen.label, en.label) as label,
    coalesce(u.usage, 0) as usage,
    coalesce(u.implementers, 0) as implementers,
    coalesce(u.events, 0) as events
from catalogue as c
left join used as u on u.concept_uri = c.uri
left join concept_names as en on en.uri = c.uri and en.language = 'en'
left join concept_names as chosen on chosen.uri = c.uri and chosen.language = $label_language
order by usage, c.uri
