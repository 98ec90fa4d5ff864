-- concept_label_norms: the normalised labels each concept has per language in ANY loaded
-- release, by concept key: what candidate_alt_labels compares implementers' labels with, ready
-- for its anti-join. A label that ESCO had in an older release is not new, nor is a label the
-- concept had under a URI a release replaced (events naming that URI count for it); a gendered
-- label "form1/form2" also contributes each form.
with
all_norms as (
    select uri, language, label_norm from cat_labels
    union
    select uri, language, unnest(form_norms) as label_norm
    from cat_labels
    where form_norms is not null
),

by_concept as (
    select uri, language, label_norm from all_norms
    union
    select s.successor_uri as uri, n.language, n.label_norm
    from all_norms as n
    join successor_of as s on s.uri = n.uri
)

select distinct k.key as concept_key, n.language, n.label_norm
from by_concept as n
join concept_keys as k on k.uri = n.uri
order by concept_key, n.language, n.label_norm
