-- release_uptake: the ESCO releases that active implementers declare, for the dashboard's
-- Uptake page.
--
-- Every accepted event names the release its implementer works with (esco_version; an event
-- that named none has the newest loaded release holding its concept). An implementer is
-- active when it sent at least one accepted event (of any type).
--
-- Row sets told apart by `section`:
--   'month'    per month (bucket: its first day; the first and last months may reach outside
--              the period, their figures do not) and declared release: the implementers
--              active that month that declared it, and their events declaring it
--   'release'  per declared release over the whole period: the same (bucket null)
--   'latest'   per declared release: the implementers whose last active day in the period
--              declared it (the newest release they declared that day), events null
-- Every row also has: loaded (true when that release is loaded), older (true when it is older
-- than the current release, the newest loaded one; null for a version that is no version
-- number, such as 'unknown'), current_version (the current release; null when none is loaded).
-- Ordered by section, bucket, then release, newest first.
--
-- Parameters: $start, $end (dates, inclusive); filters (NULL = all): $concept_type, $language,
-- $country, $sector, $context.

with
-- one row per day, implementer and release: the three counts below read these, not the
-- rollup's finer rows (type, concept type, language, context)
activity as (
    select day, implementer_id, esco_version, sum(events)::bigint as events
    from filtered_rows('activity_daily', $start, $end,
                       $concept_type, $language, $context, $country, $sector)
    group by day, implementer_id, esco_version
),

current_release as (
    select version
    from catalogue_versions
    order by rank desc
    limit 1
),

-- version numbers compare part by part as integers (1.10.0 is newer than 1.9.0)
declared as (
    select
        a.esco_version,
        case
            when regexp_full_match(a.esco_version, '\d+(\.\d+)*')
                then [try_cast(part as integer) for part in string_split(a.esco_version, '.')]
        end as version_key
    from (select distinct esco_version from activity) as a
),

by_month as (
    select
        'month' as section,
        cast(date_trunc('month', day) as date) as bucket,
        esco_version,
        count(distinct implementer_id) as implementers,
        sum(events)::bigint as events
    from activity
    group by bucket, esco_version
),

by_release as (
    select
        'release' as section,
        null::date as bucket,
        esco_version,
        count(distinct implementer_id) as implementers,
        sum(events)::bigint as events
    from activity
    group by esco_version
),

last_days as (
    select implementer_id, max(day) as day
    from activity
    group by implementer_id
),

last_declared as (
    select
        a.implementer_id,
        a.esco_version,
        row_number() over (
            partition by a.implementer_id
            order by d.version_key desc nulls last, a.esco_version desc
        ) as newest_first
    from activity as a
    join last_days as l on l.implementer_id = a.implementer_id and l.day = a.day
    join declared as d on d.esco_version = a.esco_version
),

by_latest as (
    select
        'latest' as section,
        null::date as bucket,
        esco_version,
        count(*) as implementers,
        null::bigint as events
    from last_declared
    where newest_first = 1
    group by esco_version
),

counted as (
    select * from by_month
    union all select * from by_release
    union all select * from by_latest
)

select
    c.section,
    c.bucket,
    c.esco_version,
    c.implementers,
    c.events,
    c.esco_version in (select version from catalogue_versions) as loaded,
    d.version_key < [try_cast(part as integer)
                     for part in string_split((select version from current_release), '.')]
        as older,
    (select version from current_release) as current_version
from counted as c
join declared as d on d.esco_version = c.esco_version
order by c.section, c.bucket, d.version_key desc nulls last, c.esco_version
