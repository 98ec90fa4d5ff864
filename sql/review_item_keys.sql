-- review_item_keys: every review item that review_items gives, without its evidence: item_id,
-- kind, language and in_catalogue (the same values as review_items'). What the review loop's
-- figures need of the items no decision names (kpi.review.summary), for under a third of
-- review_items' time at 10 M events: no spellings chosen, nothing counted or summed per item,
-- and read from the month tables (suggestion_months: every item sent on some day is sent in
-- its month). The rows come in no particular order.

with
sent as (
    select distinct kind, concept_key, concept_type, language, label_norm
    from suggestion_months()
)

select
    review_item_id(s.kind, ck.uri, s.concept_type, s.language, s.label_norm) as item_id,
    s.kind,
    s.language,
    kl.concept_key is not null as in_catalogue
from sent as s
left join concept_keys as ck on ck.key = s.concept_key
-- as review_items: a label already among its concept's labels in that language
left join used_label_norms as kl
    on s.kind = 'label' and kl.concept_key = s.concept_key and kl.language = s.language
   and kl.label_norm = s.label_norm
-- as review_items: labels and translations of a known concept only
where s.kind = 'proposal' or ck.uri is not null
