-- new_concept_keys: the concept_keys rows of the URIs of `candidates` (a table or CTE name with
-- a `uri` column; nulls and repeats allowed) that have no key yet, numbered on from the
-- highest key. Keys are never reassigned: published rollups keep theirs. What every model that
-- gives keys inserts (assign_concept_keys, key_batch_uris, upgrade_event_keys).
create or replace temp macro new_concept_keys(candidates) as table
    with
    new_uris as (
        select uri::varchar as uri from query_table(candidates) where uri is not null
        except
        select uri from concept_keys
    )

    select uri, (select coalesce(max(key), 0) from concept_keys)
                + row_number() over (order by uri) as key
    from new_uris;
