-- upgrade_event_keys: the private events of a warehouse of format 3 or older held each
-- concept's URI; they now hold its key. Every URI of the catalogue copy and of the events
-- gets a key (those already published keep theirs), then the events are rewritten with keys,
-- in the column order of schema.sql. The staged additions are dropped: the next run stages
-- them again (kpi.warehouse.published.stage_changes).

insert into concept_keys by name
with
held_uris as (
    select uri from concept_info
    union all
    select concept_uri from events
)

select * from new_concept_keys(held_uris);

create table keyed_events as
select
    e.implementer_id, e.type, e.day, k.key as concept_key, e.concept_type, e.esco_version,
    e.language, e.context, e.label, e.label_norm, e.count, e.events, e.watermark
from events as e
left join concept_keys as k on k.uri = e.concept_uri;

drop table events;

alter table keyed_events rename to events;

drop table added_events;

create table added_events as select * from events limit 0;
