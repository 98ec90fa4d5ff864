-- usage_daily: concept_used events per day, concept, implementer, language and context, for
-- the events a publish writes. usage = sum of `count`, events = how many events. Sorted by
-- concept within a day: smaller files, and readers group runs of equal keys. Weeks, months and
-- quarters are sums over these days (see the indicators). A day may have several files (its
-- recomputed rows and the rows added to it since): readers always sum.
select day, concept_key, concept_type, implementer_id, language, context,
       sum(count)::bigint as usage, sum(events)::bigint as events
from changed_concept_events('concept_used')
group by all
order by day, concept_key
