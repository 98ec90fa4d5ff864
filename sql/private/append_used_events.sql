-- append_used_events: a batch of concept_used events (the registered Arrow table
-- `event_batch`, with the narrow columns the store sends for this type) into the private
-- events, grouped; concept_type is the catalogue's type of the concept. A URI that a release
-- replaced is stored as its successor, and every URI as its key (key_batch_uris.sql gave the
-- batch's new URIs theirs first). $watermark: the watermark this batch is committed with.

insert into events by name
select
    b.implementer_id::integer as implementer_id,
    'concept_used' as type,
    b.day::date as day,
    k.key as concept_key,
    any_value(c.concept_type) as concept_type,
    b.esco_version::varchar as esco_version,
    b.language::varchar as language,
    b.context::varchar as context,
    sum(b.count)::bigint as count,
    count(*)::bigint as events,
    $watermark::bigint as watermark
from event_batch as b
left join successor_of as s on s.uri = b.concept_uri::varchar
left join concept_info as c on c.uri = coalesce(s.successor_uri, b.concept_uri::varchar)
left join concept_keys as k on k.uri = coalesce(s.successor_uri, b.concept_uri::varchar)
group by b.implementer_id, b.day, k.key, b.esco_version, b.language, b.context
