-- append_events: a batch of events of the other types (the registered Arrow table
-- `event_batch`, with type, label, concept_type and label_norm) into the private events,
-- grouped; concept_type is the proposed type for concept_proposed, else the catalogue's type.
-- A URI that a release replaced is stored as its successor. $watermark: the
-- watermark this batch is committed with.

insert into events
select
    b.implementer_id::integer,
    b.type::varchar,
    b.day::date,
    coalesce(s.successor_uri, b.concept_uri::varchar),
    case when b.type = 'concept_proposed' then b.concept_type::varchar else c.concept_type end,
    b.esco_version::varchar,
    b.language::varchar,
    b.context::varchar,
    b.label::varchar,
    b.label_norm::varchar,
    sum(b.count)::bigint,
    count(*)::bigint,
    $watermark::bigint
from event_batch as b
left join successor_of as s on s.uri = b.concept_uri::varchar
left join concept_info as c on c.uri = coalesce(s.successor_uri, b.concept_uri::varchar)
group by all
