-- collection_usage: how much ESCO's collections (green, digital, digcomp, transversal,
-- language and research skills; research_occupations) are used in a period, for all countries
-- and by country: the twin transition's share of skill usage, and how much of each collection
-- is used at all.
--
-- A collection's concepts are its members in the concept_collections dimension (a URI that a
-- release replaced counts as its successor) that the catalogue version in force (the newest
-- loaded one) holds, each under its current type (concepts dimension); a concept in two
-- collections counts in both. base_type is the type most of them have: 'skill', or
-- 'occupation' for research_occupations.
--
-- One row per collection for all countries (country null), then one per collection and
-- implementer country that has any concept usage in the period (usage 0 included):
--
-- usage              sum of `count` over concept_used events about the collection's concepts
-- base_usage         the same over every concept of base_type (all skill usage for a skill
--                    collection), in the same country or all
-- share              usage / base_usage, rounded to 4 decimals (null when base_usage is 0)
-- implementers       distinct implementers that used the collection's concepts
-- base_implementers  distinct implementers that used concepts of base_type
-- concepts           the collection's concepts; used: how many of them have usage > 0 there
-- coverage           used / concepts, rounded to 4 decimals
-- collection_version the release the members come from
--
-- Ordered by collection, then the all-countries row, then country.
--
-- Parameters: $period (its bounds); filters (NULL = all): $concept_type (only the
-- collections' concepts of that type count; a collection without any is left out),
-- $language, $country, $sector, $context.

with
members as (
    select distinct m.collection, coalesce(s.successor_uri, m.uri) as uri, m.version
    from concept_collections as m
    left join concept_successors as s on s.uri = m.uri
),

-- the concept_type filter applies to the collections' concepts, not to the usage rows: a share
-- is always of all usage of the collection's base type
catalogue as (
    select m.collection, m.version, c.concept_type, ck.key as concept_key
    from members as m
    join newest_concepts($concept_type) as c on c.uri = m.uri
    left join concept_keys as ck on ck.uri = m.uri
),

type_counts as (
    select collection, concept_type, count(*) as concepts, any_value(version) as version
    from catalogue
    group by collection, concept_type
),

collections as (
    select
        collection,
        -- ties by name, so that a mixed collection always gets the same base type
        first(concept_type order by concepts desc, concept_type) as base_type,
        sum(concepts) as concepts,
        any_value(version) as collection_version
    from type_counts
    group by collection
),

-- the period's usage of the collections' concepts, per concept and implementer (what distinct
-- implementers and concepts are counted from); only their rows are grouped this finely. The
-- keys are looked up in concept_keys directly, a table whose size DuckDB knows: through the
-- joins of `catalogue` it guesses that side huge and builds its hash table on the rollup's
-- rows instead (four times the cost at 10 M events)
member_use as (
    select concept_key, implementer_id, country, sum(usage) as usage
    from filtered_span_rows('usage', $period, null, $language, $context, $country, $sector)
    where concept_key in (select key from concept_keys where uri in (select uri from members))
    group by concept_key, implementer_id, country
),

-- the period's usage per concept type and implementer: the shares' denominators. The rollup
-- carries every event under its concept's current type (the aggregator re-types the events
-- whenever a release changes a type), so no join is needed here
type_use as (
    select concept_type, implementer_id, country, sum(usage) as usage
    from filtered_span_rows('usage', $period, null, $language, $context, $country, $sector)
    group by concept_type, implementer_id, country
),

-- the rows shown: every collection for all countries (total = 1) and for each country with
-- concept usage in the period, whether it used the collection or not
grid as (
    select collection, 1 as total, null::varchar as country
    from collections
    union all
    select c.collection, 0 as total, n.country
    from collections as c
    cross join (select distinct country from type_use where country is not null) as n
),

collection_use as (
    select
        c.collection,
        grouping(u.country) as total,
        u.country,
        sum(u.usage) as usage,
        count(distinct u.implementer_id) as implementers,
        -- counts are never negative: a concept has usage > 0 when any of its rows has
        count(distinct u.concept_key) filter (where u.usage > 0) as used
    from member_use as u
    join catalogue as c on c.concept_key = u.concept_key
    group by grouping sets ((c.collection, u.country), (c.collection))
),

base as (
    select
        concept_type,
        grouping(country) as total,
        country,
        sum(usage) as usage,
        count(distinct implementer_id) as implementers
    from type_use
    group by grouping sets ((concept_type, country), (concept_type))
)

select
    g.collection,
    g.country,
    c.base_type,
    coalesce(u.usage, 0) as usage,
    coalesce(b.usage, 0) as base_usage,
    case when b.usage > 0 then round(coalesce(u.usage, 0) / b.usage, 4) end as share,
    coalesce(u.implementers, 0) as implementers,
    coalesce(b.implementers, 0) as base_implementers,
    c.concepts,
    coalesce(u.used, 0) as used,
    round(coalesce(u.used, 0) / c.concepts, 4) as coverage,
    c.collection_version
from grid as g
join collections as c on c.collection = g.collection
left join collection_use as u
    on u.collection = g.collection and u.total = g.total
    and u.country is not distinct from g.country
left join base as b
    on b.concept_type = c.base_type and b.total = g.total
    and b.country is not distinct from g.country
order by g.collection, g.total desc, g.country
