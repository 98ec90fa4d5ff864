-- catalogue_versions: the catalogue versions copied so far, with what tells whether the ingest
-- store's copy changed since.
select version, loaded_at, source, concepts, labels, languages from cat_versions
