-- activity_daily: every accepted event, whatever its type, per day, implementer, type, concept
-- type, language, context and ESCO version, for the events a publish writes: active
-- implementers and the ESCO versions in use (implementer_uptake).
select day, implementer_id, type, concept_type, language, context, esco_version,
       sum(count)::bigint as usage, sum(events)::bigint as events
from changed_events()
group by all
