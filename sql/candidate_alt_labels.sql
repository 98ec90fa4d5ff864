-- candidate_alt_labels: free-text labels that implementers added to a concept (label_added
-- events) and that are not yet among its preferred, alternative or hidden labels in that
-- language.
--
-- Labels are compared and grouped by their normalised form (label_norm: Unicode NFKD, accents
-- removed, case-folded, every non letter/digit replaced by a space, spaces collapsed, trimmed;
-- computed by kpi.catalogue.normalise_label at aggregation time), against the labels of the
-- newest loaded version holding the concept. One row per concept, language and label group:
-- label is its most used original spelling (ties: most events, then alphabetical), spellings
-- how many spellings were grouped; events, usage (sum of `count`) and distinct implementers.
-- catalogue_has_language tells whether the catalogue has any label for the concept in that
-- language; when it has none, whether the label is new cannot be judged, and verdict says so.
-- Labels that normalise to nothing (only punctuation) are left out.
--
-- Parameters: $period (its bounds), $label_language (for label_concept); filters
-- (NULL = all): $concept_uri (one concept), $concept_type, $language, $country, $sector,
-- $context.

with
added as (
    select concept_key, concept_type, language, label_norm, label, implementer_id, usage,
           events
    from filtered_span_rows('labels', $period,
                            $concept_type, $language, $context, $country, $sector)
    where label_norm <> ''
      and ($concept_uri is null or concept_key = concept_key_of($concept_uri))
),

-- grouped by concept_key, language and label_norm (see label_groups)
added_labels as (
    select concept_key, language, label_norm, label, implementer_id, usage, events
    from added
),

-- the type the events carry, for a concept the catalogue no longer lists
event_types as (
    select concept_key, any_value(concept_type) as concept_type
    from added
    group by concept_key
),

-- the groups whose label_norm is not among the concept's labels in that language
new_groups as (
    select g.*
    from label_groups(added_labels) as g
    anti join used_label_norms as kl
        on kl.concept_key = g.concept_key and kl.language = g.language
       and kl.label_norm = g.label_norm
),

-- the concepts and languages of those groups that the catalogue has any label for: only
-- theirs are looked up, not every concept's languages
catalogue_languages as (
    select distinct kl.concept_key, kl.language
    from concept_label_norms as kl
    semi join new_groups as g on g.concept_key = kl.concept_key and g.language = kl.language
)

select
    ck.uri as concept_uri,
    coalesce(k.concept_type, t.concept_type) as concept_type,
    en.label as label_en,
    coalesce(chosen.label, en.label) as label_concept,
    g.language,
    g.label,
    g.label_norm,
    g.spellings,
    g.events,
    g.usage,
    g.implementers,
    cl.concept_key is not null as catalogue_has_language,
    case
        when cl.concept_key is null then 'cannot judge: no catalogue label in this language'
        else 'new'
    end as verdict
from new_groups as g
join concept_keys as ck on ck.key = g.concept_key
join event_types as t on t.concept_key = g.concept_key
left join catalogue_languages as cl
    on cl.concept_key = g.concept_key and cl.language = g.language
left join concepts as k on k.uri = ck.uri
left join concept_names as en on en.uri = ck.uri and en.language = 'en'
left join concept_names as chosen
    on chosen.uri = ck.uri and chosen.language = $label_language
order by g.implementers desc, g.usage desc, ck.uri, g.language, g.label_norm
