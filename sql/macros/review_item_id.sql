-- review_item_id: the id of a review item from its group key, exactly what
-- kpi.review.items.item_id gives: the kind's letter ('L', 'P' or 'T'), a hyphen and the first
-- 16 hex digits of the SHA-256 of kind, concept (the concept URI; for a proposal, the concept
-- type), language and label_norm, joined by the unit separator (chr(31)).
create or replace macro review_item_id(kind, concept, language, label_norm) as
    upper(left(kind, 1)) || '-'
    || left(sha256(concat_ws(chr(31), kind, coalesce(concept, ''), language, label_norm)), 16);
