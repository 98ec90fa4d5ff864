-- append_used_events: a batch of concept_used events (the registered Arrow table
-- `event_batch`, with the narrow columns the store sends for this type) into the private
-- events, grouped; concept_type is the catalogue's type of the concept. A URI that a release
-- replaced is stored as its successor. $watermark: the watermark this batch is committed with.

insert into events
select
    b.implementer_id::integer,
    'concept_used',
    b.day::date,
    coalesce(s.successor_uri, b.concept_uri::varchar),
    any_value(c.concept_type),
    b.esco_version::varchar,
    b.language::varchar,
    b.context::varchar,
    null,
    null,
    sum(b.count)::bigint,
    count(*)::bigint,
    $watermark::bigint
from event_batch as b
left join successor_of as s on s.uri = b.concept_uri::varchar
left join concept_info as c on c.uri = coalesce(s.successor_uri, b.concept_uri::varchar)
group by b.implementer_id, b.day, coalesce(s.successor_uri, b.concept_uri::varchar),
         b.esco_version, b.language, b.context
