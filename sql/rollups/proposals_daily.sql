-- proposals_daily: concept_proposed events per day, proposed type, label (with its normalised
-- form), broader concept (broader_key, null when the proposal names none), implementer,
-- language and context, for the events a publish writes. What new_concept_proposals reads.
select day, concept_type, label_norm, label, concept_key as broader_key, implementer_id,
       language, context, sum(count)::bigint as usage, sum(events)::bigint as events
from changed_concept_events('concept_proposed')
group by all
