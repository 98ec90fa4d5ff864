-- catalogue_versions: the loaded catalogue versions, oldest first (rank 1), with when they were
-- loaded, how many concepts and labels they hold and their languages (comma-separated).
select version, rank, loaded_at, concepts, labels, coalesce(languages, '') as languages
from cat_versions
order by rank
