-- concept_successors: URIs that a loaded release replaced, with the concept that carries them
-- now, the release that says so and how (`code`: ESCO's code column names the old code-style
-- URI). Events naming such a URI are counted under its successor.
select uri, successor_uri, version, source
from successor_of
order by uri
