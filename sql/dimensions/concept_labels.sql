-- concept_labels: every label (preferred, alternative, hidden) of each concept in each
-- language, from the newest version holding the concept, with its normalised form.
select uri, language, kind, label, label_norm
from current_labels
order by uri, language, kind, label
