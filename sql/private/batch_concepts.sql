-- batch_concepts: the concept, as it is stored, of each distinct concept URI of a batch about
-- to be appended (the registered Arrow table `batch_uris`: pos, uri): a URI that a release
-- replaced counts as its successor, with its key (key_batch_uris.sql gave the batch's new URIs
-- theirs first) and the catalogue's type of it (catalogue_type: null for a URI no loaded
-- release holds). One row per URI (each table joined has one row per uri), in `pos` order:
-- kpi.warehouse.aggregate gives every event of the batch its URI's row by position.

select
    k.key as concept_key,
    c.concept_type as catalogue_type
from batch_uris as b
left join successor_of as s on s.uri = b.uri
left join concept_info as c on c.uri = coalesce(s.successor_uri, b.uri)
left join concept_keys as k on k.uri = coalesce(s.successor_uri, b.uri)
order by b.pos
