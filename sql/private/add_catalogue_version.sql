-- add_catalogue_version: record a copied version; its rank is set by rank_catalogue_versions.
-- Parameters: $version, $loaded_at, $source, $concepts, $labels, $languages.
insert into cat_versions values ($version, 0, $loaded_at, $source, $concepts, $labels, $languages)
