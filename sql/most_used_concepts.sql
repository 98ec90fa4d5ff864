-- most_used_concepts: which ESCO concepts are used most in a period.
--
-- usage         sum of `count` over concept_used events in the period
-- implementers  distinct implementers that used the concept
-- rank          standard competition rank by usage (1, 2, 2, 4: equal usage shares a rank and
--               the next rank skips); ties are listed by concept URI
-- previous_usage, change, change_pct
--               usage in the previous period of equal length, usage - previous_usage, and
--               100 * change / previous_usage rounded to 0.1 (null when previous_usage is 0)
-- label_en      English preferred label; label: preferred label in $label_language where the
--               catalogue has one, else the English one
-- status        the concept's status in the newest loaded catalogue version ('released'), or
--               'absent' when that version no longer holds it
-- in_current    true when the newest loaded release (the current one) holds the concept, false
--               when it dropped it: still used after removal
-- last_release  the newest loaded release holding the concept (the current one unless it was
--               dropped); null for a concept no loaded release holds
--
-- Parameters: $period, $previous (the bounds of the period and of the previous one),
-- $label_language; filters (NULL = all): $concept_type, $language, $country, $sector, $context.

with
-- each period read on its own, from its whole quarters and months where it has them (see
-- span_rows), and grouped per concept (counting its distinct implementers in the same pass
-- costs less than grouping per concept and implementer first)
current_period as (
    select
        concept_key,
        any_value(concept_type) as concept_type,
        sum(usage) as usage,
        sum(events) as events,
        count(distinct implementer_id) as implementers
    from filtered_span_rows('usage', $period,
                            $concept_type, $language, $context, $country, $sector)
    group by concept_key
),

previous_period as (
    select concept_key, sum(usage) as usage
    from filtered_span_rows('usage', $previous,
                            $concept_type, $language, $context, $country, $sector)
    group by concept_key
),

ranked as (
    select
        c.*,
        coalesce(p.usage, 0) as previous_usage,
        rank() over (order by c.usage desc) as rank
    from current_period as c
    left join previous_period as p on p.concept_key = c.concept_key
)

select
    r.rank,
    ck.uri as concept_uri,
    coalesce(k.concept_type, r.concept_type) as concept_type,
    en.label as label_en,
    coalesce(chosen.label, en.label) as label,
    coalesce(k.status, 'absent') as status,
    coalesce(k.in_newest, false) as in_current,
    k.current_version as last_release,
    r.usage,
    r.implementers,
    r.events,
    r.previous_usage,
    r.usage - r.previous_usage as change,
    case
        when r.previous_usage > 0
            then round(100.0 * (r.usage - r.previous_usage) / r.previous_usage, 1)
    end as change_pct
from ranked as r
join concept_keys as ck on ck.key = r.concept_key
left join concepts as k on k.uri = ck.uri
left join concept_names as en on en.uri = ck.uri and en.language = 'en'
left join concept_names as chosen
    on chosen.uri = ck.uri and chosen.language = $label_language
order by r.rank, ck.uri
