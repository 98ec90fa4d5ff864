-- assign_concept_keys: a key for every concept URI of the catalogue and of the events a publish
-- is about to write (changed_events) that has none yet. Keys are never reassigned: published
-- rollups of the other days keep theirs. Returns how many keys were added.

insert into concept_keys
with
new_uris as (
    select uri from concept_info
    union
    select concept_uri from changed_events()
    where concept_uri is not null
    except
    select uri from concept_keys
)

select uri, (select coalesce(max(key), 0) from concept_keys) + row_number() over (order by uri)
from new_uris
