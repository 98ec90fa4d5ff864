-- catalogue_coverage: what share of the catalogue's concepts, by concept type, was used at
-- least once in a period.
--
-- concepts: concepts of that type in the catalogue version in force (the newest loaded one);
-- used: how many of them have usage > 0 (concept_used events) in the period; share: used /
-- concepts, rounded to 4 decimals. Events about concepts that the newest version dropped do
-- not count here (see most_used_concepts, status 'absent').
--
-- Parameters: $period (its bounds); filters (NULL = all): $concept_type,
-- $language, $country, $sector, $context.

with
newest as (
    select version from catalogue_versions order by rank desc limit 1
),

catalogue as (
    select uri, concept_type from newest_concepts($concept_type)
),

-- the concept_type filter applies to the catalogue above, not to the usage rows
used_keys as (
    select concept_key
    from filtered_span_rows('usage', $period, null, $language, $context, $country, $sector)
    group by concept_key
    having sum(usage) > 0
),

used as (
    select ck.uri as concept_uri
    from used_keys as s
    join concept_keys as ck on ck.key = s.concept_key
)

select
    c.concept_type,
    (select version from newest) as catalogue_version,
    count(*) as concepts,
    count(u.concept_uri) as used,
    round(count(u.concept_uri) / count(*), 4) as share
from catalogue as c
left join used as u on u.concept_uri = c.uri
group by c.concept_type
order by c.concept_type
