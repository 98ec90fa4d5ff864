-- filtered_rows: period_rows of a rollup that has concept_type, language and context columns
-- (all but quality_daily), in every global filter: what an indicator reads. A NULL filter
-- selects all; an indicator passes NULL for a filter it does not apply to its rows.
create or replace macro filtered_rows(
    rollup, first_day, last_day,
    only_concept_type, only_language, only_context, only_country, only_sector
) as table
    select *
    from period_rows(rollup, first_day, last_day, only_country, only_sector)
    where in_filters(concept_type, language, context,
                     only_concept_type, only_language, only_context);
