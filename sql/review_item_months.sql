-- review_item_months: the implementers of every review item per month from $since on, for the
-- review queue's sparklines: one row per group key (as review_items) and month (its first
-- day) in which the item was sent, in no particular order.
--
-- Read from the month tables (suggestion_months): a month that has ended from its sums, about
-- two thirds of its days' rows at 10 M events; the others (this month, or one whose sums the
-- next run has yet to write) from their days, as the reader's views give them. A month's
-- implementers are distinct either way. Item ids are computed per item and month, after
-- grouping.
--
-- Parameters: $since (the first day of a month).

with
per_month as (
    select
        kind, concept_key, concept_type, language, label_norm,
        day as month,  -- a month table's rows are dated on their month's first day
        count(distinct implementer_id) as implementers
    from suggestion_months()
    where day >= $since
    group by all
)

select
    review_item_id(m.kind, ck.uri, m.concept_type, m.language, m.label_norm) as item_id,
    m.kind,
    ck.uri as concept_uri,
    m.concept_type,
    m.language,
    m.label_norm,
    m.month,
    m.implementers
from per_month as m
left join concept_keys as ck on ck.key = m.concept_key
