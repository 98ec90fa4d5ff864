-- append_used_events: a batch of concept_used events (the registered Arrow table
-- `event_batch`, with the narrow columns the store sends for this type) into the private
-- events, grouped; concept_type is the catalogue's type of the concept.

insert into events
select
    b.implementer_id::integer,
    'concept_used',
    b.day::date,
    b.concept_uri::varchar,
    any_value(c.concept_type),
    b.esco_version::varchar,
    b.language::varchar,
    b.context::varchar,
    null,
    null,
    sum(b.count)::bigint,
    count(*)::bigint
from event_batch as b
left join concept_info as c on c.uri = b.concept_uri::varchar
group by b.implementer_id, b.day, b.concept_uri, b.esco_version, b.language, b.context
