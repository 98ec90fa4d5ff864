-- key_batch_uris: a key for every concept URI of a batch about to be appended (the registered
-- Arrow table `batch_uris`, its distinct URIs; a replaced URI counts as its successor) that has
-- none yet. The catalogue's URIs have theirs already (assign_concept_keys.sql runs whenever
-- the catalogue changes), so this finds some only for URIs no loaded release holds. Returns
-- how many keys were added.

insert into concept_keys by name
with
batch_keyed_uris as (
    select coalesce(s.successor_uri, b.uri::varchar) as uri
    from batch_uris as b
    left join successor_of as s on s.uri = b.uri::varchar
)

select * from new_concept_keys(batch_keyed_uris)
