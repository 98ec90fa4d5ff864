-- in_filters: whether a rollup row's concept_type, language and context pass the global
-- filters of the same names (a NULL filter passes every row): what filtered_rows and
-- filtered_span_rows apply. Expanded in place, so DuckDB still pushes each comparison down to
-- the files it reads.
create or replace macro in_filters(
    concept_type, language, context, only_concept_type, only_language, only_context
) as
    (only_concept_type is null or concept_type = only_concept_type)
    and (only_language is null or language = only_language)
    and (only_context is null or context = only_context);
