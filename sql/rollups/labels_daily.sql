-- labels_daily: label_added events per day, concept, implementer, language, context and label
-- (with its normalised form), for the events a publish writes. What candidate_alt_labels reads.
select day, concept_key, concept_type, implementer_id, language, context, label_norm, label,
       sum(count)::bigint as usage, sum(events)::bigint as events
from changed_concept_events('label_added')
group by all
order by day, concept_key
