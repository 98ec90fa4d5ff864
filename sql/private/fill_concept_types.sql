-- fill_concept_types: after the catalogue changed, every private event is brought to the
-- catalogue's current view of its concept, and the days it touches are republished:
-- 1. an event naming a URI that a release replaced is counted under its successor;
-- 2. an event's concept type is its concept's type in the newest release holding it (a skill
--    group that became a skill is filtered as a skill, in every period);
-- 3. an event whose concept no loaded release knows any more (its release was removed) is
--    dropped: the ingest store has put it back into quarantine, and a replay brings it back
--    as a new event once a release knows it.
-- concept_proposed events keep their own (proposed) type; their concept_uri is the broader
-- concept.

insert or ignore into dirty_days
select distinct e.day
from events as e
join successor_of as s on s.uri = e.concept_uri;

update events set concept_uri = s.successor_uri
from successor_of as s
where events.concept_uri = s.uri;

insert or ignore into dirty_days
select distinct e.day
from events as e
join concept_info as c on c.uri = e.concept_uri
where e.type <> 'concept_proposed'
  and e.concept_type is distinct from c.concept_type;

update events set concept_type = c.concept_type
from concept_info as c
where events.concept_uri = c.uri
  and events.type <> 'concept_proposed'
  and events.concept_type is distinct from c.concept_type;

insert or ignore into dirty_days
select distinct day
from events
where concept_uri is not null
  and concept_uri not in (select uri from concept_info);

delete from events
where concept_uri is not null
  and concept_uri not in (select uri from concept_info);
