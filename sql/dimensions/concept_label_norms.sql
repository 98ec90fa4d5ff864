-- concept_label_norms: the normalised labels each concept has per language, by concept key:
-- what candidate_alt_labels compares implementers' labels with, ready for its anti-join.
select distinct k.key as concept_key, l.language, l.label_norm
from current_labels as l
join concept_keys as k on k.uri = l.uri
order by concept_key, l.language, l.label_norm
