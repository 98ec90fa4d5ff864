-- assign_concept_keys: a key for every concept URI of the catalogue and of the dirty days'
-- events that has none yet. Keys are never reassigned: published rollups of days that are not
-- recomputed keep theirs. Returns how many keys were added.

insert into concept_keys
with
new_uris as (
    select uri from concept_info
    union
    select concept_uri from events
    where concept_uri is not null and day in (select day from dirty_days)
    except
    select uri from concept_keys
)

select uri, (select coalesce(max(key), 0) from concept_keys) + row_number() over (order by uri)
from new_uris
