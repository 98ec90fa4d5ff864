-- two_span_rows: the rows of a period and of its previous one (which ends before the other
-- starts) at once, each period read as span_rows reads it, with `previous` saying which
-- period a row is of; in every global filter, as filtered_span_rows. A query comparing the
-- two periods reads each table once instead of twice: DuckDB plans a table macro anew at
-- every use, and each use of filtered_span_rows binds three views of a rollup's files.
-- Every span lies inside one of the periods, so its first day (`day`) tells which.
create or replace macro two_span_rows(
    rollup, prev_from, prev_to, from_day, to_day,
    only_concept_type, only_language, only_context, only_country, only_sector
) as table
    with
    quarters as (
        select *
        from query_table(grain_table(rollup, 'quarterly',
            has_quarters(prev_from, prev_to) or has_quarters(from_day, to_day)))
        where day between quarters_from(prev_from) and quarters_to(prev_to)
           or day between quarters_from(from_day) and quarters_to(to_day)
    ),

    months as (
        select *
        from query_table(grain_table(rollup, 'monthly',
            has_months(prev_from, prev_to) or has_months(from_day, to_day)))
        where (day between months_from(prev_from) and months_to(prev_to)
               and (day < quarters_from(prev_from) or day > quarters_to(prev_to)))
           or (day between months_from(from_day) and months_to(to_day)
               and (day < quarters_from(from_day) or day > quarters_to(to_day)))
    ),

    days as (
        select *
        from query_table(grain_table(rollup, 'daily',
            has_days(prev_from, prev_to) or has_days(from_day, to_day)))
        where (day between prev_from and prev_to
               and (day < months_from(prev_from) or day > months_to(prev_to)))
           or (day between from_day and to_day
               and (day < months_from(from_day) or day > months_to(to_day)))
    ),

    spans as (
        select * from quarters
        union all by name
        select * from months
        union all by name
        select * from days
    )

    select r.*, r.day <= prev_to as previous, i.name as implementer, i.country, i.sector
    from spans as r
    left join implementers as i on i.id = r.implementer_id
    where (only_country is null or i.country = only_country)
      and (only_sector is null or i.sector = only_sector)
      and in_filters(r.concept_type, r.language, r.context,
                     only_concept_type, only_language, only_context);
