-- review_items: every suggestion that implementers sent, as an item for ESCO's editors to
-- decide on, with its evidence over all time (every published day, whatever the period).
--
-- Three kinds, each one row per group key (labels compared by label_norm, as in the
-- indicators):
--   label        label_added events: concept, language, label_norm (candidate_alt_labels)
--   proposal     concept_proposed events: concept_type, language, label_norm
--                (new_concept_proposals)
--   translation  translation_feedback events: concept, language, suggested label's label_norm
--                (translation_feedback)
-- Evidence: label (the most used spelling), spellings, implementers (distinct), countries
-- (distinct countries of those implementers), events, usage (sum of `count`), first_seen and
-- last_seen (days). in_catalogue: for a label, whether its label_norm is already among the
-- concept's labels in that language (in any loaded release, gendered forms included); such a
-- label is no candidate (kpi.review keeps it only when a decision names it). broader_uris: the
-- broader concepts a proposal named (sorted). current_label: a translation's concept's
-- preferred label in that language (null when the catalogue has none). item_id: see the
-- macro review_item_id. Labels that normalise to nothing are left out.
--
-- The rows come in no particular order: kpi.review.decisions.queue orders the items (by
-- implementers, events and id) once their statuses are known.
--
-- Parameters (NULL = all): $kind ('label', 'proposal' or 'translation'), $language;
-- $label_norms, a list: only the items with one of these label_norms (the few that decisions
-- name, kpi.review.summary).

with
added as (
    select concept_key, concept_type, language, label_norm, label, implementer_id, usage,
           events, day
    from labels_daily
    where label_norm <> ''
      and ($kind is null or $kind = 'label')
      and ($language is null or language = $language)
      and ($label_norms is null or label_norm in (select unnest($label_norms)))
),

-- grouped by concept_key, language and label_norm (see label_groups)
added_labels as (
    select concept_key, language, label_norm, label, implementer_id, usage, events
    from added
),

added_spans as (
    select
        a.concept_key,
        a.language,
        a.label_norm,
        any_value(a.concept_type) as event_type,
        min(a.day) as first_seen,
        max(a.day) as last_seen,
        count(distinct i.country) as countries
    from added as a
    left join implementers as i on i.id = a.implementer_id
    group by a.concept_key, a.language, a.label_norm
),

label_items as (
    select
        'label' as kind,
        ck.uri as concept_uri,
        coalesce(k.concept_type, s.event_type) as concept_type,
        g.language,
        g.label,
        g.label_norm,
        g.spellings,
        g.implementers,
        s.countries,
        g.events,
        g.usage,
        s.first_seen,
        s.last_seen,
        kl.concept_key is not null as in_catalogue,
        []::varchar[] as broader_uris,
        null::varchar as current_label
    from label_groups(added_labels) as g
    join added_spans as s
        on s.concept_key = g.concept_key and s.language = g.language
       and s.label_norm = g.label_norm
    join concept_keys as ck on ck.key = g.concept_key
    left join concepts as k on k.uri = ck.uri
    left join used_label_norms as kl
        on kl.concept_key = g.concept_key and kl.language = g.language
       and kl.label_norm = g.label_norm
),

proposed as (
    select concept_type, language, label_norm, label, broader_key, implementer_id, usage,
           events, day
    from proposals_daily
    where label_norm <> ''
      and ($kind is null or $kind = 'proposal')
      and ($language is null or language = $language)
      and ($label_norms is null or label_norm in (select unnest($label_norms)))
),

-- grouped by concept_type, language and label_norm (see label_groups)
proposed_labels as (
    select concept_type, language, label_norm, label, implementer_id, usage, events
    from proposed
),

proposed_spans as (
    select
        p.concept_type,
        p.language,
        p.label_norm,
        min(p.day) as first_seen,
        max(p.day) as last_seen,
        count(distinct i.country) as countries,
        list_sort(list(distinct b.uri) filter (where b.uri is not null)) as broader_uris
    from proposed as p
    left join implementers as i on i.id = p.implementer_id
    left join concept_keys as b on b.key = p.broader_key
    group by p.concept_type, p.language, p.label_norm
),

proposal_items as (
    select
        'proposal' as kind,
        null::varchar as concept_uri,
        g.concept_type,
        g.language,
        g.label,
        g.label_norm,
        g.spellings,
        g.implementers,
        s.countries,
        g.events,
        g.usage,
        s.first_seen,
        s.last_seen,
        false as in_catalogue,
        coalesce(s.broader_uris, []::varchar[]) as broader_uris,
        null::varchar as current_label
    from label_groups(proposed_labels) as g
    join proposed_spans as s
        on s.concept_type = g.concept_type and s.language = g.language
       and s.label_norm = g.label_norm
),

feedback as (
    select concept_key, concept_type, language, label_norm, label, implementer_id, usage,
           events, day
    from feedback_daily
    where label_norm <> ''
      and ($kind is null or $kind = 'translation')
      and ($language is null or language = $language)
      and ($label_norms is null or label_norm in (select unnest($label_norms)))
),

-- grouped by concept_key, language and label_norm (see label_groups)
suggested_labels as (
    select concept_key, language, label_norm, label, implementer_id, usage, events
    from feedback
),

feedback_spans as (
    select
        f.concept_key,
        f.language,
        f.label_norm,
        any_value(f.concept_type) as event_type,
        min(f.day) as first_seen,
        max(f.day) as last_seen,
        count(distinct i.country) as countries
    from feedback as f
    left join implementers as i on i.id = f.implementer_id
    group by f.concept_key, f.language, f.label_norm
),

translation_items as (
    select
        'translation' as kind,
        ck.uri as concept_uri,
        coalesce(k.concept_type, s.event_type) as concept_type,
        g.language,
        g.label,
        g.label_norm,
        g.spellings,
        g.implementers,
        s.countries,
        g.events,
        g.usage,
        s.first_seen,
        s.last_seen,
        false as in_catalogue,
        []::varchar[] as broader_uris,
        cur.label as current_label
    from label_groups(suggested_labels) as g
    join feedback_spans as s
        on s.concept_key = g.concept_key and s.language = g.language
       and s.label_norm = g.label_norm
    join concept_keys as ck on ck.key = g.concept_key
    left join concepts as k on k.uri = ck.uri
    left join concept_names as cur on cur.uri = ck.uri and cur.language = g.language
),

items as (
    select * from label_items
    union all
    select * from proposal_items
    union all
    select * from translation_items
)

select
    review_item_id(kind, concept_uri, concept_type, language, label_norm) as item_id,
    kind,
    concept_uri,
    concept_type,
    language,
    label,
    label_norm,
    spellings,
    implementers,
    countries,
    events::bigint as events,
    usage::bigint as usage,
    first_seen,
    last_seen,
    in_catalogue,
    broader_uris,
    current_label
from items
