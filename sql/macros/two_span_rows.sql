-- two_span_rows: the rows of a period (`span`) and of its previous one (`previous_span`, which
-- ends before the other starts; both the bounds span_rows takes) at once, each period read as
-- span_rows reads it, with `previous` saying which period a row is of; in every global filter,
-- as filtered_span_rows. A query comparing the two periods reads each table once instead of
-- twice: DuckDB plans a table macro anew at every use, and each use of filtered_span_rows
-- binds three views of a rollup's files. Every span lies inside one of the periods, so its
-- first day (`day`) tells which.
create or replace macro two_span_rows(
    rollup, previous_span, span,
    only_concept_type, only_language, only_context, only_country, only_sector
) as table
    with
    quarters as (
        select *
        from query_table(grain_table(rollup, 'quarterly',
            previous_span['has_quarters'] or span['has_quarters']))
        where day between previous_span['quarters_from'] and previous_span['quarters_to']
           or day between span['quarters_from'] and span['quarters_to']
    ),

    months as (
        select *
        from query_table(grain_table(rollup, 'monthly',
            previous_span['has_months'] or span['has_months']))
        where (day between previous_span['months_from'] and previous_span['months_to']
               and (day < previous_span['quarters_from'] or day > previous_span['quarters_to']))
           or (day between span['months_from'] and span['months_to']
               and (day < span['quarters_from'] or day > span['quarters_to']))
    ),

    days as (
        select *
        from query_table(grain_table(rollup, 'daily',
            previous_span['has_days'] or span['has_days']))
        where (day between previous_span['from_day'] and previous_span['to_day']
               and (day < previous_span['months_from'] or day > previous_span['months_to']))
           or (day between span['from_day'] and span['to_day']
               and (day < span['months_from'] or day > span['months_to']))
    ),

    spans as (
        select * from quarters
        union all by name
        select * from months
        union all by name
        select * from days
    )

    select r.*, r.day <= previous_span['to_day'] as previous, i.name as implementer, i.country,
           i.sector
    from spans as r
    left join implementers as i on i.id = r.implementer_id
    where (only_country is null or i.country = only_country)
      and (only_sector is null or i.sector = only_sector)
      and in_filters(r.concept_type, r.language, r.context,
                     only_concept_type, only_language, only_context);
