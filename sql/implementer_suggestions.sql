-- implementer_suggestions: the suggestion groups (review items, see review_items.sql) that one
-- implementer contributed to, over all time, with that implementer's own spelling.
--
-- One row per group key, as review_items groups them (labels compared by label_norm):
--   label        labels_daily: concept, language, label_norm
--   proposal     proposals_daily: concept_type, language, label_norm
--   translation  feedback_daily: concept, language, label_norm
-- label: the implementer's most used spelling in the group (ties: most events, then
-- alphabetical; label_groups over its own rows only), never another implementer's.
-- implementers: how many implementers sent the group in all (for the status rules of
-- kpi.review.decisions only: the API never shows it). in_catalogue: as in review_items.
-- The item id is derived from the group key by kpi.review.items.item_id.
--
-- Each rollup is read once (a materialized CTE): opening its daily files costs more than the
-- few rows they hold.
--
-- Parameters: $implementer_id.

with
added as materialized (
    select concept_key, language, label_norm, label, implementer_id, usage, events
    from labels_daily
    where label_norm <> ''
),

own_added as (
    select * from added where implementer_id = $implementer_id
),

-- grouped by concept_key, language and label_norm: the implementer's own spelling
own_label_groups as (
    select concept_key, language, label_norm, label
    from label_groups(own_added)
),

label_reach as (
    select g.concept_key, g.language, g.label_norm,
           count(distinct d.implementer_id) as implementers
    from own_label_groups as g
    join added as d
        on d.concept_key = g.concept_key and d.language = g.language
       and d.label_norm = g.label_norm
    group by g.concept_key, g.language, g.label_norm
),

label_items as (
    select
        'label' as kind,
        ck.uri as concept_uri,
        null::varchar as concept_type,
        g.language,
        g.label,
        g.label_norm,
        r.implementers,
        kl.concept_key is not null as in_catalogue
    from own_label_groups as g
    join label_reach as r
        on r.concept_key = g.concept_key and r.language = g.language
       and r.label_norm = g.label_norm
    join concept_keys as ck on ck.key = g.concept_key
    left join used_label_norms as kl
        on kl.concept_key = g.concept_key and kl.language = g.language
       and kl.label_norm = g.label_norm
),

proposed as materialized (
    select concept_type, language, label_norm, label, implementer_id, usage, events
    from proposals_daily
    where label_norm <> ''
),

own_proposed as (
    select * from proposed where implementer_id = $implementer_id
),

-- grouped by concept_type, language and label_norm
own_proposal_groups as (
    select concept_type, language, label_norm, label
    from label_groups(own_proposed)
),

proposal_reach as (
    select g.concept_type, g.language, g.label_norm,
           count(distinct d.implementer_id) as implementers
    from own_proposal_groups as g
    join proposed as d
        on d.concept_type = g.concept_type and d.language = g.language
       and d.label_norm = g.label_norm
    group by g.concept_type, g.language, g.label_norm
),

proposal_items as (
    select
        'proposal' as kind,
        null::varchar as concept_uri,
        g.concept_type,
        g.language,
        g.label,
        g.label_norm,
        r.implementers,
        false as in_catalogue
    from own_proposal_groups as g
    join proposal_reach as r
        on r.concept_type = g.concept_type and r.language = g.language
       and r.label_norm = g.label_norm
),

feedback as materialized (
    select concept_key, language, label_norm, label, implementer_id, usage, events
    from feedback_daily
    where label_norm <> ''
),

own_feedback as (
    select * from feedback where implementer_id = $implementer_id
),

-- grouped by concept_key, language and label_norm
own_feedback_groups as (
    select concept_key, language, label_norm, label
    from label_groups(own_feedback)
),

feedback_reach as (
    select g.concept_key, g.language, g.label_norm,
           count(distinct d.implementer_id) as implementers
    from own_feedback_groups as g
    join feedback as d
        on d.concept_key = g.concept_key and d.language = g.language
       and d.label_norm = g.label_norm
    group by g.concept_key, g.language, g.label_norm
),

translation_items as (
    select
        'translation' as kind,
        ck.uri as concept_uri,
        null::varchar as concept_type,
        g.language,
        g.label,
        g.label_norm,
        r.implementers,
        false as in_catalogue
    from own_feedback_groups as g
    join feedback_reach as r
        on r.concept_key = g.concept_key and r.language = g.language
       and r.label_norm = g.label_norm
    join concept_keys as ck on ck.key = g.concept_key
),

items as (
    select * from label_items
    union all
    select * from proposal_items
    union all
    select * from translation_items
)

select
    kind,
    concept_uri,
    concept_type,
    language,
    label,
    label_norm,
    implementers,
    in_catalogue
from items
order by kind, language, label_norm, concept_uri, concept_type
