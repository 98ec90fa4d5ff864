-- translation_feedback: feedback on a concept's label in a language (translation_feedback
-- events), with the labels suggested instead.
--
-- One row per language, concept and suggested label group (labels grouped by normalised form:
-- NFKD, accents removed, case-folded, non letter/digit -> space, spaces collapsed, trimmed).
-- concept_events and concept_implementers count all feedback on the concept in that language;
-- events, usage and implementers count the label group; suggested_label is the group's most
-- used original spelling; current_label is the catalogue's preferred label in that language
-- (null when it has none), label_en the English one.
--
-- Parameters: $period (its bounds); filters (NULL = all): $concept_uri (one
-- concept), $concept_type, $language, $country, $sector, $context.

with
feedback as (
    select concept_key, concept_type, language, label_norm, label, implementer_id, usage,
           events
    from filtered_span_rows('feedback', $period,
                            $concept_type, $language, $context, $country, $sector)
    where $concept_uri is null or concept_key = concept_key_of($concept_uri)
),

per_concept as (
    select
        language,
        concept_key,
        any_value(concept_type) as concept_type,
        sum(events) as concept_events,
        count(distinct implementer_id) as concept_implementers
    from feedback
    group by language, concept_key
),

-- grouped by language, concept_key and label_norm (see label_groups)
suggested_labels as (
    select language, concept_key, label_norm, label, implementer_id, usage, events
    from feedback
)

select
    g.language,
    ck.uri as concept_uri,
    coalesce(k.concept_type, c.concept_type) as concept_type,
    en.label as label_en,
    cur.label as current_label,
    g.label as suggested_label,
    g.label_norm,
    g.events,
    g.usage,
    g.implementers,
    c.concept_events,
    c.concept_implementers
from label_groups(suggested_labels) as g
join concept_keys as ck on ck.key = g.concept_key
join per_concept as c on c.language = g.language and c.concept_key = g.concept_key
left join concepts as k on k.uri = ck.uri
left join concept_names as en on en.uri = ck.uri and en.language = 'en'
left join concept_names as cur on cur.uri = ck.uri and cur.language = g.language
order by g.language, c.concept_events desc, ck.uri, g.events desc, g.label_norm
