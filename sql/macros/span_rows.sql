-- span_rows: what period_rows gives, read from the coarsest rows that cover the period exactly:
-- a rollup's quarter rows (<rollup>_quarterly) for the quarters inside from_day..to_day, its
-- month rows (<rollup>_monthly) for the other months inside it, and its day rows
-- (<rollup>_daily) for the days left over. Each row's `day` is the first day of the span it
-- sums, always inside the period; sums and distinct counts over the rows are those of the days.
-- `rollup` is the rollup's name without its grain: 'usage', 'labels', 'proposals', 'feedback'
-- or 'activity'. Only for indicators that never look at single days inside the period.
--
-- The period is one STRUCT parameter with its bounds, worked out by kpi.warehouse.spans
-- (span_bounds): from_day and to_day; its whole quarters, quarters_from..quarters_to; its whole
-- months, months_from..months_to; and whether it holds a whole quarter (has_quarters), a whole
-- month outside them (has_months) or a day outside its whole months (has_days). Every filter
-- compares the partition column `day` with those constants (not with a subquery, which DuckDB
-- would not use to skip files), so the files of the other spans are never opened.

-- The table a branch of span_rows reads: the rollup's table of that grain ('daily', 'monthly',
-- 'quarterly'), or its empty one (<rollup>_empty: the same columns, no rows) when `needed` is
-- false, that is when the period holds no span that the branch reads. DuckDB binds a view anew
-- at every use, and binding the daily view names one Parquet file per day of the warehouse:
-- some milliseconds for every read of a period of whole months, which reads no day. The
-- arguments of query_table are constants once the period's bounds are bound, so the choice is
-- made before anything is bound.
create or replace macro grain_table(rollup, grain, needed) as
    rollup || case when needed is not distinct from false then '_empty' else '_' || grain end;

create or replace macro span_rows(rollup, span, only_country, only_sector)
as table
    with
    quarters as (
        select *
        from query_table(grain_table(rollup, 'quarterly', span['has_quarters']))
        where day between span['quarters_from'] and span['quarters_to']
    ),

    -- a month of a quarter inside the period is read from the quarter
    months as (
        select *
        from query_table(grain_table(rollup, 'monthly', span['has_months']))
        where day between span['months_from'] and span['months_to']
          and (day < span['quarters_from'] or day > span['quarters_to'])
    ),

    -- a day of a month inside the period is read from the month (or its quarter)
    days as (
        select *
        from query_table(grain_table(rollup, 'daily', span['has_days']))
        where day between span['from_day'] and span['to_day']
          and (day < span['months_from'] or day > span['months_to'])
    ),

    spans as (
        select * from quarters
        union all by name
        select * from months
        union all by name
        select * from days
    )

    select r.*, i.name as implementer, i.country, i.sector
    from spans as r
    left join implementers as i on i.id = r.implementer_id
    where (only_country is null or i.country = only_country)
      and (only_sector is null or i.sector = only_sector);
