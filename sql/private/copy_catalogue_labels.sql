-- copy_catalogue_labels: a chunk of one version's labels (the registered Arrow table
-- `version_labels`: uri, language, kind, label, label_norm, form_norms). Parameters: $version.
insert into cat_labels
select $version, uri, language, kind, label, label_norm, form_norms
from version_labels
