-- review_item_detail: what a reviewer sees of one review item beyond its evidence row: every
-- spelling implementers sent (section 'spelling': the original text, its events and
-- implementers), and from $since on its implementers and events per month (section 'month':
-- the month's first day in `month`), over every published day.
--
-- Parameters: the item's group key, as kpi.review.items derives its id from it: $kind
-- ('label', 'proposal' or 'translation'), $concept_uri (labels and translations),
-- $concept_type (proposals), $language, $label_norm; $since (a date).

with
item_rows as (
    select label, implementer_id, events, day
    from labels_daily
    where $kind = 'label'
      and concept_key = concept_key_of($concept_uri)
      and language = $language and label_norm = $label_norm
    union all
    select label, implementer_id, events, day
    from proposals_daily
    where $kind = 'proposal'
      and concept_type = $concept_type
      and language = $language and label_norm = $label_norm
    union all
    select label, implementer_id, events, day
    from feedback_daily
    where $kind = 'translation'
      and concept_key = concept_key_of($concept_uri)
      and language = $language and label_norm = $label_norm
),

spellings as (
    select
        'spelling' as section,
        label,
        null::date as month,
        sum(events)::bigint as events,
        count(distinct implementer_id) as implementers
    from item_rows
    group by label
),

months as (
    select
        'month' as section,
        null::varchar as label,
        date_trunc('month', day)::date as month,
        sum(events)::bigint as events,
        count(distinct implementer_id) as implementers
    from item_rows
    where day >= $since
    group by month
)

select section, label, month, events, implementers
from (select * from spellings union all select * from months)
order by section desc, implementers desc, events desc, label, month
