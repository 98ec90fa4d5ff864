-- dirty_events: the private events of one type on the days to republish, with the concept's
-- key (null for a concept_proposed event that names no broader concept). What every rollup of
-- rollups/ is computed from.
create or replace temp macro dirty_events(event_type) as table
    select e.*, k.key as concept_key
    from events as e
    left join concept_keys as k on k.uri = e.concept_uri
    where e.type = event_type
      and e.day in (select day from dirty_days);
