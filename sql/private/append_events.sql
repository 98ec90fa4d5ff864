-- append_events: a batch of events of the other types (the registered Arrow table
-- `event_batch`, with type, label, concept_type and label_norm) into the private events,
-- grouped; concept_type is the proposed type for concept_proposed, else the catalogue's type.
-- A URI that a release replaced is stored as its successor, and every URI as its key
-- (key_batch_uris.sql gave the batch's new URIs theirs first). $watermark: the watermark this
-- batch is committed with.

insert into events by name
select
    b.implementer_id::integer as implementer_id,
    b.type::varchar as type,
    b.day::date as day,
    k.key as concept_key,
    case when b.type = 'concept_proposed' then b.concept_type::varchar
         else c.concept_type end as concept_type,
    b.esco_version::varchar as esco_version,
    b.language::varchar as language,
    b.context::varchar as context,
    b.label::varchar as label,
    b.label_norm::varchar as label_norm,
    sum(b.count)::bigint as count,
    count(*)::bigint as events,
    $watermark::bigint as watermark
from event_batch as b
left join successor_of as s on s.uri = b.concept_uri::varchar
left join concept_info as c on c.uri = coalesce(s.successor_uri, b.concept_uri::varchar)
left join concept_keys as k on k.uri = coalesce(s.successor_uri, b.concept_uri::varchar)
group by all
