-- usage_rollup: which usage rollup an indicator that neither shows nor groups by language or
-- context reads through span_rows: 'concept_usage' (usage per concept and implementer, language
-- and context summed away: several times fewer rows over whole months and quarters) when
-- neither of those filters is set, else 'usage'. Both give the same sums and distinct counts
-- of concepts and implementers. DuckDB resolves the table when it binds the query, so the
-- files of the other are never opened.
create or replace macro usage_rollup(only_language, only_context) as
    case when only_language is null and only_context is null
         then 'concept_usage' else 'usage' end;
