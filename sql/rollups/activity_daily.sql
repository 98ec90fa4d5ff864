-- activity_daily: every accepted event, whatever its type, per day, implementer, type, concept
-- type, language, context and ESCO version, for the days to republish: active implementers and
-- the ESCO versions in use (implementer_uptake).
select day, implementer_id, type, concept_type, language, context, esco_version,
       sum(count)::bigint as usage, sum(events)::bigint as events
from events
where day in (select day from dirty_days)
group by all
