-- review_item_id: the id of a review item from its group key, exactly what
-- kpi.review.items.item_id gives: the kind's letter ('L', 'P' or 'T'), a hyphen and the first
-- 16 hex digits of the SHA-256 of kind, concept (the concept URI; for a proposal, which names
-- no concept of its own, the concept type), language and label_norm, joined by the unit
-- separator (chr(31)).
create or replace macro review_item_id(kind, concept_uri, concept_type, language, label_norm) as
    upper(left(kind, 1)) || '-'
    || left(sha256(concat_ws(
        chr(31), kind,
        coalesce(case when kind = 'proposal' then concept_type else concept_uri end, ''),
        language, label_norm)), 16);
