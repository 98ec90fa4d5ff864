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

-- successor_of: every URI that a loaded release says it replaced and that the newest release
-- does not hold itself, with the concept carrying it now (the newest release's statement
-- wins; a successor that was replaced in turn is followed one step further).
delete from successor_of;

insert into successor_of
with
stated as (
    select s.uri, s.successor_uri, s.version, s.source,
           row_number() over (partition by s.uri order by v.rank desc) as rn
    from cat_successors as s
    join cat_versions as v on v.version = s.version
    where s.uri not in (select uri from concept_info where in_newest)
),

latest as (
    select uri, successor_uri, version, source from stated where rn = 1
)

select l.uri, coalesce(next.successor_uri, l.successor_uri), l.version, l.source
from latest as l
left join latest as next on next.uri = l.successor_uri
where coalesce(next.successor_uri, l.successor_uri) in (select uri from concept_info);
