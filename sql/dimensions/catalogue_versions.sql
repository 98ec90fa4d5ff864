-- catalogue_versions: the loaded catalogue versions, oldest first (rank 1), with when they were
-- loaded and how many concepts and labels they hold.
select version, rank, loaded_at, concepts, labels
from cat_versions
order by rank
