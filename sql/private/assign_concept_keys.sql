-- assign_concept_keys: a key for every concept URI of the catalogue (and every successor a
-- release names) that has none yet; run whenever the catalogue changes, before the events are
-- brought to it (fill_concept_types.sql). Keys are never reassigned: published rollups keep
-- theirs. The events' own URIs get theirs as they are appended (key_batch_uris.sql). Returns
-- how many keys were added.

insert into concept_keys
with
new_uris as (
    select uri from concept_info
    union
    select successor_uri from successor_of
    except
    select uri from concept_keys
)

select uri, (select coalesce(max(key), 0) from concept_keys) + row_number() over (order by uri)
from new_uris
