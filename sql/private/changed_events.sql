-- changed_events: the private events whose rollups a publish writes: every event of a dirty
-- day (its rollups are recomputed whole), and on the other days the events added since the
-- published watermark (added_events: their sums go into new files beside the day's files).
-- The two sets never share a day, so each day's rows come from one of them.
-- changed_concept_events: those of one type (concept_key is null for a concept_proposed
-- event that names no broader concept). What every rollup of rollups/ is computed from.
create or replace temp macro changed_events() as table
    select * from events where day in (select day from dirty_days)
    union all
    select * from added_events;

create or replace temp macro changed_concept_events(event_type) as table
    select *
    from changed_events()
    where type = event_type;
