-- append_events: a batch of events of the other types (the registered Arrow table
-- `event_batch`, with type, label, concept_type and label_norm, each event with its concept
-- as stored: concept_key and catalogue_type, see batch_concepts.sql) into the private events,
-- grouped; concept_type is the proposed type for concept_proposed, else the catalogue's type.
-- $watermark: the watermark this batch is committed with.

insert into events by name
select
    b.implementer_id::integer as implementer_id,
    b.type::varchar as type,
    b.day::date as day,
    b.concept_key,
    case when b.type = 'concept_proposed' then b.concept_type::varchar
         else b.catalogue_type end as concept_type,
    b.esco_version::varchar as esco_version,
    b.language::varchar as language,
    b.context::varchar as context,
    b.label::varchar as label,
    b.label_norm::varchar as label_norm,
    sum(b.count)::bigint as count,
    count(*)::bigint as events,
    $watermark::bigint as watermark
from event_batch as b
group by all
