-- batch_events: the rows of `batch` (the name of the registered Arrow table of a batch of
-- events, there only while it is appended) with their concept as it is stored: a URI that a
-- release replaced counts as its successor, with its key (key_batch_uris.sql gave the batch's
-- new URIs theirs first) and the catalogue's type of it (catalogue_type: null for a URI no
-- loaded release holds). What append_events and append_used_events insert, each for its
-- batch's shape.
create or replace temp macro batch_events(batch) as table
    select
        b.*,
        k.key as concept_key,
        c.concept_type as catalogue_type
    from query_table(batch) as b
    left join successor_of as s on s.uri = b.concept_uri::varchar
    left join concept_info as c on c.uri = coalesce(s.successor_uri, b.concept_uri::varchar)
    left join concept_keys as k on k.uri = coalesce(s.successor_uri, b.concept_uri::varchar);
