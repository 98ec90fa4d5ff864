-- review_item_months: the implementers of every review item per month from $since on, for the
-- review queue's sparklines: one row per group key (as review_items) and month (its first
-- day) in which the item was sent.
--
-- Parameters: $since (a date).

with
sent as (
    select 'label' as kind, concept_key, null::varchar as concept_type, language, label_norm,
           implementer_id, day
    from labels_daily
    where label_norm <> '' and day >= $since
    union all
    select 'proposal', null, concept_type, language, label_norm, implementer_id, day
    from proposals_daily
    where label_norm <> '' and day >= $since
    union all
    select 'translation', concept_key, null, language, label_norm, implementer_id, day
    from feedback_daily
    where label_norm <> '' and day >= $since
)

select
    review_item_id(
        s.kind, case when s.kind = 'proposal' then s.concept_type else ck.uri end,
        s.language, s.label_norm
    ) as item_id,
    s.kind,
    ck.uri as concept_uri,
    s.concept_type,
    s.language,
    s.label_norm,
    date_trunc('month', s.day)::date as month,
    count(distinct s.implementer_id) as implementers
from sent as s
left join concept_keys as ck on ck.key = s.concept_key
group by all
order by s.kind, concept_uri, s.concept_type, s.language, s.label_norm, month
