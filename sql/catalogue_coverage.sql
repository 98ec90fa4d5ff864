-- catalogue_coverage: what share of the catalogue's concepts, by concept type, was used at
-- least once in a period.
--
-- concepts: concepts of that type in the catalogue version in force (the newest loaded one);
-- used: how many of them have usage > 0 (concept_used events) in the period; share: used /
-- concepts, rounded to 4 decimals. Events about concepts that the newest version dropped do
-- not count here (see most_used_concepts, status 'absent').
--
-- Parameters: $start, $end (dates, inclusive); filters (NULL = all): $concept_type,
-- $language, $country, $sector, $context.

with
newest as (
    select version from catalogue_versions order by rank desc limit 1
),

catalogue as (
    select uri, concept_type
    from concepts
    where in_newest
      and ($concept_type is null or concept_type = $concept_type)
),

used_keys as (
    select u.concept_key
    from usage_daily as u
    left join implementers as i on i.id = u.implementer_id
    where u.day between $start and $end
      and ($language is null or u.language = $language)
      and ($context is null or u.context = $context)
      and ($country is null or i.country = $country)
      and ($sector is null or i.sector = $sector)
    group by u.concept_key
    having sum(u.usage) > 0
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
