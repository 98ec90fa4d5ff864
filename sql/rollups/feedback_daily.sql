-- feedback_daily: translation_feedback events per day, concept, implementer, language, context
-- and suggested label (with its normalised form), for the events a publish writes. What
-- translation_feedback reads.
select day, concept_key, concept_type, implementer_id, language, context, label_norm, label,
       sum(count)::bigint as usage, sum(events)::bigint as events
from changed_concept_events('translation_feedback')
group by all
order by day, concept_key
