-- implementer_uptake: active implementers in a period, by country and by sector.
--
-- An implementer is active when it sent at least one accepted event (of any type) in the
-- period. Two row sets, never crossed: dimension = 'country' (value = ISO country code) and
-- dimension = 'sector'. active_implementers; events (accepted events) and usage (sum of
-- `count`); events_per_implementer = events / active_implementers rounded to 0.1;
-- esco_versions: the ESCO versions their events named, in version order.
--
-- Parameters: $period (its bounds); filters (NULL = all): $concept_type,
-- $language, $country, $sector, $context.

with
activity as (
    select implementer_id, country, sector, esco_version, events, usage
    from filtered_span_rows('activity', $period,
                            $concept_type, $language, $context, $country, $sector)
),

by_implementer as (
    select implementer_id, any_value(country) as country, any_value(sector) as sector,
           sum(events) as events, sum(usage) as usage
    from activity
    group by implementer_id
),

by_dimension as (
    select 'country' as dimension, country as value, implementer_id, events, usage
    from by_implementer
    union all
    select 'sector' as dimension, sector as value, implementer_id, events, usage
    from by_implementer
),

versions as (
    select distinct 'country' as dimension, country as value, esco_version from activity
    union
    select distinct 'sector' as dimension, sector as value, esco_version from activity
),

version_lists as (
    select
        dimension,
        value,
        list(
            esco_version
            order by [try_cast(part as integer) for part in string_split(esco_version, '.')],
                     esco_version
        ) as esco_versions
    from versions
    group by dimension, value
)

select
    d.dimension,
    d.value,
    count(*) as active_implementers,
    sum(d.events) as events,
    sum(d.usage) as usage,
    round(sum(d.events) / count(*), 1) as events_per_implementer,
    any_value(v.esco_versions) as esco_versions
from by_dimension as d
left join version_lists as v
    on v.dimension = d.dimension and v.value is not distinct from d.value
group by d.dimension, d.value
order by d.dimension, d.value
