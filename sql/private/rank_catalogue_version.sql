-- rank_catalogue_version: the place of a version among those loaded (1 = oldest), in the order
-- of its version number. Parameters: $version, $rank.
update cat_versions set rank = $rank where version = $version
