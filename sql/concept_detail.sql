-- concept_detail: one concept at a glance, for the dashboard's concept page.
--
-- Row sets told apart by `section`:
--   'concept'   one row: key = status in the newest loaded version ('released', or 'absent'
--               when no loaded version holds it), kind = concept type, label = the newest
--               version holding it
--   'country'   usage in the period by implementer country (key), with usage (sum of
--               `count`), events and distinct implementers
--   'language'  the same by language (key)
--   'label'     the catalogue's labels of the concept: key = language, kind = preferred,
--               alt or hidden, label
--   'replaced'  the URIs a loaded release replaced by this concept, whose events it counts:
--               key = the old URI, kind = how the release states it (source), label = the
--               release that replaced it
-- Ordered by section, then usage descending, then key, kind and label.
--
-- Parameters: $period (its bounds), $concept_uri; filters (NULL = all):
-- $language, $country, $sector, $context.

with
used as (
    select language, country, implementer_id, usage, events
    from filtered_span_rows('usage', $period, null, $language, $context, $country, $sector)
    where concept_key = concept_key_of($concept_uri)
),

info as (
    select
        'concept' as section,
        case when k.in_newest then k.status else 'absent' end as key,
        k.concept_type as kind,
        k.current_version as label,
        null::bigint as usage,
        null::bigint as events,
        null::bigint as implementers
    from concepts as k
    where k.uri = $concept_uri
),

by_country as (
    select 'country' as section, coalesce(country, '') as key, null as kind, null as label,
           sum(usage) as usage, sum(events) as events,
           count(distinct implementer_id) as implementers
    from used
    group by country
),

by_language as (
    select 'language' as section, language as key, null as kind, null as label,
           sum(usage) as usage, sum(events) as events,
           count(distinct implementer_id) as implementers
    from used
    group by language
),

labels as (
    select 'label' as section, language as key, kind, label,
           null::bigint as usage, null::bigint as events, null::bigint as implementers
    from concept_labels
    where uri = $concept_uri
),

replaced as (
    select 'replaced' as section, uri as key, source as kind, version as label,
           null::bigint as usage, null::bigint as events, null::bigint as implementers
    from concept_successors
    where successor_uri = $concept_uri
)

select section, key, kind, label, usage, events, implementers
from (
    select * from info
    union all select * from by_country
    union all select * from by_language
    union all select * from labels
    union all select * from replaced
)
order by section, usage desc nulls last, key, kind, label
