-- append_used_events: a batch of concept_used events (the registered Arrow table
-- `event_batch`, with the narrow columns the store sends for this type, each event with its
-- concept as stored: concept_key and catalogue_type, see batch_concepts.sql) into the private
-- events, grouped; concept_type is the catalogue's type of the concept. $watermark: the
-- watermark this batch is committed with.

insert into events by name
select
    b.implementer_id::integer as implementer_id,
    'concept_used' as type,
    b.day::date as day,
    b.concept_key,
    any_value(b.catalogue_type) as concept_type,
    b.esco_version::varchar as esco_version,
    b.language::varchar as language,
    b.context::varchar as context,
    sum(b.count)::bigint as count,
    count(*)::bigint as events,
    $watermark::bigint as watermark
from event_batch as b
group by b.implementer_id, b.day, b.concept_key, b.esco_version, b.language, b.context
