-- kpi_counts: the counts that the Overview's cards show, without the lists they count.
--
-- candidate_labels  how many rows candidate_alt_labels gives for the same period and filters
--                   (label groups not yet among their concept's labels in that language)
-- proposals         how many rows new_concept_proposals gives (proposal groups)
-- feedback_events   the sum of `events` over the rows of translation_feedback (every
--                   translation_feedback event about a known concept)
-- Each is exactly what counting that indicator's answer gives (tests/test_rollup_grains.py),
-- for a fraction of its cost: no spellings chosen, no labels joined, nothing sorted.
--
-- Parameters: $start, $end (dates, inclusive); filters (NULL = all): $concept_type, $language,
-- $country, $sector, $context.

with
label_groups_seen as (
    select distinct concept_key, language, label_norm
    from filtered_span_rows('labels', $start, $end,
                            $concept_type, $language, $context, $country, $sector)
    where label_norm <> ''
),

candidate_groups as (
    select g.concept_key
    from label_groups_seen as g
    semi join concept_keys as ck on ck.key = g.concept_key
    anti join concept_label_norms as kl
        on kl.concept_key = g.concept_key and kl.language = g.language
       and kl.label_norm = g.label_norm
),

proposal_groups as (
    select distinct concept_type, language, label_norm
    from filtered_span_rows('proposals', $start, $end,
                            $concept_type, $language, $context, $country, $sector)
    where label_norm <> ''
),

feedback as (
    select f.events
    from filtered_span_rows('feedback', $start, $end,
                            $concept_type, $language, $context, $country, $sector) as f
    semi join concept_keys as ck on ck.key = f.concept_key
)

select
    (select count(*) from candidate_groups) as candidate_labels,
    (select count(*) from proposal_groups) as proposals,
    (select coalesce(sum(events), 0) from feedback) as feedback_events
