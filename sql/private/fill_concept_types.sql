-- fill_concept_types: after the catalogue changed, every private event is brought to the
-- catalogue's current view of its concept, and the days it touches are republished:
-- 1. an event naming a URI that a release replaced is counted under its successor;
-- 2. an event's concept type is its concept's type in the newest release holding it (a skill
--    group that became a skill is filtered as a skill, in every period);
-- 3. an event whose concept no loaded release knows any more (its release was removed) is
--    dropped: the ingest store has put it back into quarantine, and a replay brings it back
--    as a new event once a release knows it.
-- concept_proposed events keep their own (proposed) type; their concept is the broader one.
-- Events hold concept keys: run after assign_concept_keys.sql, which gives every successor
-- and catalogue URI its key.

create or replace temp table replaced_keys as
select old.key as old_key, new.key as new_key
from successor_of as s
join concept_keys as old on old.uri = s.uri
join concept_keys as new on new.uri = s.successor_uri;

create or replace temp table key_info as
select k.key, c.concept_type
from concept_info as c
join concept_keys as k on k.uri = c.uri;

insert or ignore into dirty_days
select distinct e.day
from events as e
join replaced_keys as r on r.old_key = e.concept_key;

update events set concept_key = r.new_key
from replaced_keys as r
where events.concept_key = r.old_key;

insert or ignore into dirty_days
select distinct e.day
from events as e
join key_info as i on i.key = e.concept_key
where e.type <> 'concept_proposed'
  and e.concept_type is distinct from i.concept_type;

update events set concept_type = i.concept_type
from key_info as i
where events.concept_key = i.key
  and events.type <> 'concept_proposed'
  and events.concept_type is distinct from i.concept_type;

insert or ignore into dirty_days
select distinct day
from events
where concept_key is not null
  and concept_key not in (select key from key_info);

delete from events
where concept_key is not null
  and concept_key not in (select key from key_info);

drop table replaced_keys;

drop table key_info;
