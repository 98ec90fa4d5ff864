-- two_span_rows: rows whose sums are those of a period (`span`) and of its previous one
-- (`previous_span`, which ends before the other starts; both the bounds span_rows takes), read
-- at once, with `previous` saying which period a row counts for; in every global filter, as
-- filtered_span_rows. For sums only: usage and events added up per group give each period's
-- figures, but some rows lie outside their period, negated.
--
-- Each period is read as span_rows reads it, but for a month that ended and that the period
-- covers all but a few days of (complemented: kpi.warehouse.spans): it is read as its sums
-- less those days, their rows negated (usage and events times -1). A month's sums hold about
-- half the rows of its days, and the previous period of a month or of the last 30 days covers
-- such a month: September's previous period, 2-31 August, is August less 1 August.
--
-- A query comparing the two periods reads each table once instead of twice (the daily one
-- twice when days are taken out): DuckDB plans a table macro anew at every use, and each use
-- of filtered_span_rows binds three views of a rollup's files.
create or replace macro two_span_rows(
    rollup, previous_span, span,
    only_concept_type, only_language, only_context, only_country, only_sector
) as table
    with
    -- a quarter, a whole month and a day lie inside one period: their first day tells which
    quarters as (
        select *, day <= previous_span['to_day'] as previous
        from query_table(grain_table(rollup, 'quarterly',
            previous_span['has_quarters'] or span['has_quarters']))
        where day between previous_span['quarters_from'] and previous_span['quarters_to']
           or day between span['quarters_from'] and span['quarters_to']
    ),

    -- a complemented month of the period may start in the previous period
    months as (
        select *,
               day <= previous_span['to_day'] and day <> span['complemented_first'] as previous
        from query_table(grain_table(rollup, 'monthly',
            previous_span['has_span_months'] or span['has_span_months']))
        where (day between previous_span['months_from'] and previous_span['months_to']
               and (day < previous_span['quarters_from'] or day > previous_span['quarters_to']))
           or (day between span['months_from'] and span['months_to']
               and (day < span['quarters_from'] or day > span['quarters_to']))
           or day in (previous_span['complemented_first'], previous_span['complemented_last'],
                      span['complemented_first'], span['complemented_last'])
    ),

    days as (
        select *, day <= previous_span['to_day'] as previous
        from query_table(grain_table(rollup, 'daily',
            previous_span['has_plain_days'] or span['has_plain_days']))
        where (day between previous_span['plain_from'] and previous_span['plain_to']
               and (day < previous_span['months_from'] or day > previous_span['months_to']))
           or (day between span['plain_from'] and span['plain_to']
               and (day < span['months_from'] or day > span['months_to']))
    ),

    -- the days a complemented month holds outside its period, negated (a day of the period's
    -- month before it may be a day of the previous period as well: read above too)
    days_out as (
        select * replace (-usage as usage, -events as events),
               day between previous_span['out1_from'] and previous_span['out1_to']
               or day between previous_span['out2_from'] and previous_span['out2_to']
                   as previous
        from query_table(grain_table(rollup, 'daily',
            previous_span['has_days_out'] or span['has_days_out']))
        where day between previous_span['out1_from'] and previous_span['out1_to']
           or day between previous_span['out2_from'] and previous_span['out2_to']
           or day between span['out1_from'] and span['out1_to']
           or day between span['out2_from'] and span['out2_to']
    ),

    spans as (
        select * from quarters
        union all by name
        select * from months
        union all by name
        select * from days
        union all by name
        select * from days_out
    )

    select r.*, i.name as implementer, i.country, i.sector
    from spans as r
    left join implementers as i on i.id = r.implementer_id
    where (only_country is null or i.country = only_country)
      and (only_sector is null or i.sector = only_sector)
      and in_filters(r.concept_type, r.language, r.context,
                     only_concept_type, only_language, only_context);
