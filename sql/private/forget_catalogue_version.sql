-- forget_catalogue_version: drop one catalogue version's copy (before it is copied again, or
-- because the ingest store no longer has it). Parameters: $version.
delete from cat_versions where version = $version;
delete from cat_concepts where version = $version;
delete from cat_labels where version = $version;
delete from cat_collections where version = $version;
delete from cat_successors where version = $version;
