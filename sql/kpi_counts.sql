-- kpi_counts: the figures that the Overview's cards show, without the lists they count.
--
-- candidate_labels  how many rows candidate_alt_labels gives for the same period and filters
--                   (label groups not yet among their concept's labels in that language)
-- proposals         how many rows new_concept_proposals gives (proposal groups)
-- feedback_events   the sum of `events` over the rows of translation_feedback (every
--                   translation_feedback event about a known concept)
-- implementers      the sum of active_implementers over implementer_uptake's country rows
--                   (every implementer active in the period)
-- countries         how many of those rows name a country
-- concepts          the sum of concepts over catalogue_coverage's rows (the release in force)
-- used_concepts     the sum of used over catalogue_coverage's rows
-- Each is exactly what that indicator's answer gives (tests/test_rollup_grains.py), for a
-- fraction of its cost: no spellings chosen, no labels joined, nothing sorted, and one query
-- instead of five.
--
-- Parameters: $period (its bounds); filters (NULL = all): $concept_type, $language,
-- $country, $sector, $context.

with
label_groups_seen as (
    select distinct concept_key, language, label_norm
    from filtered_span_rows('labels', $period,
                            $concept_type, $language, $context, $country, $sector)
    where label_norm <> ''
),

candidate_groups as (
    select g.concept_key
    from label_groups_seen as g
    semi join concept_keys as ck on ck.key = g.concept_key
    anti join used_label_norms as kl
        on kl.concept_key = g.concept_key and kl.language = g.language
       and kl.label_norm = g.label_norm
),

proposal_groups as (
    select distinct concept_type, language, label_norm
    from filtered_span_rows('proposals', $period,
                            $concept_type, $language, $context, $country, $sector)
    where label_norm <> ''
),

-- the catalogue's concepts (of the release in force, in the type filter) and those used in the
-- period: catalogue_coverage's concepts and used, summed over its rows
used_keys as (
    select concept_key
    from filtered_span_rows('usage', $period, null, $language, $context, $country, $sector)
    group by concept_key
    having sum(usage) > 0
),

coverage as (
    select count(*) as concepts, count(u.concept_key) as used_concepts
    from newest_concepts($concept_type) as c
    left join concept_keys as ck on ck.uri = c.uri
    left join used_keys as u on u.concept_key = ck.key
),

-- the implementers active in the period and their countries: implementer_uptake's
-- active_implementers summed over its country rows, and how many countries those rows name
active as (
    select
        count(distinct implementer_id) as implementers,
        count(distinct nullif(country, '')) as countries
    from filtered_span_rows('activity', $period,
                            $concept_type, $language, $context, $country, $sector)
),

feedback as (
    select f.events
    from filtered_span_rows('feedback', $period,
                            $concept_type, $language, $context, $country, $sector) as f
    semi join concept_keys as ck on ck.key = f.concept_key
)

select
    (select count(*) from candidate_groups) as candidate_labels,
    (select count(*) from proposal_groups) as proposals,
    (select coalesce(sum(events), 0) from feedback) as feedback_events,
    a.implementers,
    a.countries,
    c.concepts,
    c.used_concepts
from active as a
cross join coverage as c
