-- upgrade_catalogue_copy: a warehouse of an older format gets the catalogue columns it lacks,
-- and forgets its catalogue copy so that the next run copies every release again in full.
alter table cat_versions add column if not exists languages varchar;
alter table cat_labels add column if not exists form_norms varchar[];
delete from cat_versions;
delete from cat_concepts;
delete from cat_labels;
delete from cat_collections;
delete from cat_successors;
