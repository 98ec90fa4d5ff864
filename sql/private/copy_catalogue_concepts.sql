-- copy_catalogue_concepts: one version's concepts (the registered Arrow table
-- `version_concepts`: uri, concept_type, status). Parameters: $version.
insert into cat_concepts
select $version, uri, concept_type, status
from version_concepts
