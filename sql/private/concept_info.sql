-- concept_info: rebuilt from the catalogue copy whenever it changes. Per concept URI of any
-- loaded version: its type and the version it was last seen in (the newest holding it), its
-- status in the newest loaded version ('absent' when that version dropped it) and whether the
-- newest version holds it.
delete from concept_info;

insert into concept_info
with
ranked as (
    select c.uri, c.concept_type, c.status, c.version, v.rank,
           row_number() over (partition by c.uri order by v.rank desc) as rn
    from cat_concepts as c
    join cat_versions as v on v.version = c.version
),

newest as (
    select max(rank) as rank from cat_versions
)

select
    r.uri,
    r.concept_type,
    case when r.rank = n.rank then r.status else 'absent' end,
    r.version,
    r.rank = n.rank
from ranked as r
cross join newest as n
where r.rn = 1;
