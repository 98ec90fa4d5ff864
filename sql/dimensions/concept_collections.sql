-- concept_collections: the members of ESCO's collections (green, digital, digcomp,
-- transversal, language, research, research_occupations), as the newest loaded release that
-- has collection files lists them.
with
newest_with_collections as (
    select c.version
    from cat_collections as c
    join cat_versions as v on v.version = c.version
    order by v.rank desc
    limit 1
)

select c.collection, c.uri, c.version
from cat_collections as c
where c.version = (select version from newest_with_collections)
order by c.collection, c.uri
