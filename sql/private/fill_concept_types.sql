-- fill_concept_types: events aggregated before their concept's version was copied (cannot
-- happen for accepted events, but a catalogue reloaded by hand could) get the catalogue's type,
-- and their days are republished.
insert or ignore into dirty_days
select distinct e.day
from events as e
join concept_info as c on c.uri = e.concept_uri
where e.concept_type is null and e.type <> 'concept_proposed';

update events set concept_type = c.concept_type
from concept_info as c
where events.concept_uri = c.uri
  and events.concept_type is null
  and events.type <> 'concept_proposed';
