-- assign_concept_keys: a key for every concept URI of the catalogue (and every successor a
-- release names) that has none yet; run whenever the catalogue changes, before the events are
-- brought to it (fill_concept_types.sql). Keys are never reassigned: published rollups keep
-- theirs. The events' own URIs get theirs as they are appended (key_batch_uris.sql). Returns
-- how many keys were added.

insert into concept_keys by name
with
catalogue_uris as (
    select uri from concept_info
    union all
    select successor_uri from successor_of
)

select * from new_concept_keys(catalogue_uris)
