-- newest_catalogue_version: the newest loaded catalogue version (no row before the first).
select version from cat_versions order by rank desc limit 1
