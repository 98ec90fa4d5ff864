-- suggestion_months: the rows of every suggestion sent, per month, as the review loop's
-- month-based models read them (review_item_months, review_item_keys): kind ('label',
-- 'proposal' or 'translation'), its group key (concept_key for labels and translations,
-- concept_type for proposals, language, label_norm; the key column a kind does not use is
-- null), implementer_id and day (its month's first day). From the month tables: an ended
-- month's sums, the other months' days as a reader's views give them. Labels that normalise to
-- nothing are left out.
create or replace macro suggestion_months() as table
    select 'label' as kind, concept_key, null::varchar as concept_type, language, label_norm,
           implementer_id, day
    from labels_monthly
    where label_norm <> ''
    union all
    select 'proposal', null, concept_type, language, label_norm, implementer_id, day
    from proposals_monthly
    where label_norm <> ''
    union all
    select 'translation', concept_key, null, language, label_norm, implementer_id, day
    from feedback_monthly
    where label_norm <> '';
