-- concepts: every concept of any loaded catalogue version, with its type, its status in the
-- newest version ('absent' when that version dropped it), the newest version holding it
-- (current_version) and whether the newest version holds it (in_newest).
select uri, concept_type, status, current_version, in_newest
from concept_info
order by uri
