-- copy_catalogue_successors: the URIs one version says it replaced (the registered Arrow table
-- `version_successors`: uri, successor_uri, source). Parameters: $version.
insert into cat_successors
select $version, uri, successor_uri, source
from version_successors
