-- concept_keys: the integer key of every concept URI that the rollups carry instead of the URI.
select key, uri
from concept_keys
order by key
