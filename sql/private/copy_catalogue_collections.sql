-- copy_catalogue_collections: one version's collection members (the registered Arrow table
-- `version_collections`: collection, uri). Parameters: $version.
insert into cat_collections
select $version, collection, uri
from version_collections
