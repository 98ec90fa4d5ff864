-- filtered_span_rows: span_rows of a rollup ('usage', 'labels', 'proposals', 'feedback' or
-- 'activity') in every global filter, as filtered_rows is to period_rows: what an indicator
-- that sums over the whole period reads. A NULL filter selects all.
create or replace macro filtered_span_rows(
    rollup, span,
    only_concept_type, only_language, only_context, only_country, only_sector
) as table
    select *
    from span_rows(rollup, span, only_country, only_sector)
    where in_filters(concept_type, language, context,
                     only_concept_type, only_language, only_context);
