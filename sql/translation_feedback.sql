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
-- Parameters: $start, $end (dates, inclusive); filters (NULL = all): $concept_uri (one
-- concept), $concept_type, $language, $country, $sector, $context.

with
feedback as (
    select f.concept_key, f.concept_type, f.language, f.label_norm, f.label,
           f.implementer_id, f.usage, f.events
    from feedback_daily as f
    left join implementers as i on i.id = f.implementer_id
    where f.day between $start and $end
      and ($concept_uri is null or f.concept_key = (
          select key from concept_keys where uri = $concept_uri))
      and ($concept_type is null or f.concept_type = $concept_type)
      and ($language is null or f.language = $language)
      and ($context is null or f.context = $context)
      and ($country is null or i.country = $country)
      and ($sector is null or i.sector = $sector)
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

spellings as (
    select language, concept_key, label_norm, label,
           sum(usage) as usage, sum(events) as events
    from feedback
    group by language, concept_key, label_norm, label
),

representative as (
    select language, concept_key, label_norm, label
    from spellings
    qualify row_number() over (
        partition by language, concept_key, label_norm
        order by usage desc, events desc, label
    ) = 1
),

label_groups as (
    select
        language,
        concept_key,
        label_norm,
        sum(events) as events,
        sum(usage) as usage,
        count(distinct implementer_id) as implementers
    from feedback
    group by language, concept_key, label_norm
)

select
    g.language,
    ck.uri as concept_uri,
    coalesce(k.concept_type, c.concept_type) as concept_type,
    en.label as label_en,
    cur.label as current_label,
    r.label as suggested_label,
    g.label_norm,
    g.events,
    g.usage,
    g.implementers,
    c.concept_events,
    c.concept_implementers
from label_groups as g
join concept_keys as ck on ck.key = g.concept_key
join per_concept as c on c.language = g.language and c.concept_key = g.concept_key
join representative as r
    on r.language = g.language and r.concept_key = g.concept_key
   and r.label_norm is not distinct from g.label_norm
left join concepts as k on k.uri = ck.uri
left join concept_names as en on en.uri = ck.uri and en.language = 'en'
left join concept_names as cur on cur.uri = ck.uri and cur.language = g.language
order by g.language, c.concept_events desc, ck.uri, g.events desc, g.label_norm
