-- span_rows: what period_rows gives, read from the coarsest rows that cover the period exactly:
-- a rollup's quarter rows (<rollup>_quarterly) for the quarters inside from_day..to_day, its
-- month rows (<rollup>_monthly) for the other months inside it, and its day rows
-- (<rollup>_daily) for the days left over. Each row's `day` is the first day of the span it
-- sums, always inside the period; sums and distinct counts over the rows are those of the days.
-- `rollup` is the rollup's name without its grain: 'usage', 'labels', 'proposals', 'feedback'
-- or 'activity'. Only for indicators that never look at single days inside the period.
--
-- The whole months inside the period run from months_from(from_day), the first month starting
-- on or after it, to months_to(to_day), the last day of the last month ending on or before
-- it; whole quarters likewise. Every filter compares the partition column `day` with those
-- expressions of the period's bounds (not with a subquery, which DuckDB would not use to skip
-- files), so the files of the other spans are never opened.
create or replace macro months_from(from_day) as
    cast(date_trunc('month', from_day - interval 1 day) + interval 1 month as date);

create or replace macro months_to(to_day) as
    cast(date_trunc('month', to_day + interval 1 day) as date) - 1;

create or replace macro quarters_from(from_day) as
    cast(date_trunc('quarter', from_day - interval 1 day) + interval 3 month as date);

create or replace macro quarters_to(to_day) as
    cast(date_trunc('quarter', to_day + interval 1 day) as date) - 1;

-- The table a branch of span_rows reads: the rollup's table of that grain ('daily', 'monthly',
-- 'quarterly'), or its empty one (<rollup>_empty: the same columns, no rows) when `needed` is
-- false, that is when the period holds no span that the branch reads. DuckDB binds a view anew
-- at every use, and binding the daily view names one Parquet file per day of the warehouse:
-- some milliseconds for every read of a period of whole months, which reads no day. The
-- arguments of query_table are constants once the period's bounds are bound, so the choice is
-- made before anything is bound.
create or replace macro grain_table(rollup, grain, needed) as
    rollup || case when needed is not distinct from false then '_empty' else '_' || grain end;

-- whether a period holds a whole quarter
create or replace macro has_quarters(from_day, to_day) as
    quarters_from(from_day) <= quarters_to(to_day);

-- whether a period holds a whole month outside its whole quarters
create or replace macro has_months(from_day, to_day) as
    months_from(from_day) <= months_to(to_day)
    and (months_from(from_day) < quarters_from(from_day)
         or months_to(to_day) > quarters_to(to_day));

-- whether a period holds a day outside its whole months
create or replace macro has_days(from_day, to_day) as
    from_day < months_from(from_day) or to_day > months_to(to_day);

create or replace macro span_rows(rollup, from_day, to_day, only_country, only_sector)
as table
    with
    quarters as (
        select *
        from query_table(grain_table(rollup, 'quarterly', has_quarters(from_day, to_day)))
        where day between quarters_from(from_day) and quarters_to(to_day)
    ),

    -- a month of a quarter inside the period is read from the quarter
    months as (
        select *
        from query_table(grain_table(rollup, 'monthly', has_months(from_day, to_day)))
        where day between months_from(from_day) and months_to(to_day)
          and (day < quarters_from(from_day) or day > quarters_to(to_day))
    ),

    -- a day of a month inside the period is read from the month (or its quarter)
    days as (
        select *
        from query_table(grain_table(rollup, 'daily', has_days(from_day, to_day)))
        where day between from_day and to_day
          and (day < months_from(from_day) or day > months_to(to_day))
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
