-- period_rows: the rows of a daily rollup (a table or view name: usage_daily, labels_daily,
-- proposals_daily, feedback_daily, activity_daily, quality_daily) for the days first_day to
-- last_day (inclusive) and the implementer filters, each with its implementer's name, country
-- and sector. A NULL filter selects all.
create or replace macro period_rows(rollup, first_day, last_day, only_country, only_sector)
as table
    select r.*, i.name as implementer, i.country, i.sector
    from query_table(rollup) as r
    left join implementers as i on i.id = r.implementer_id
    where r.day between first_day and last_day
      and (only_country is null or i.country = only_country)
      and (only_sector is null or i.sector = only_sector);
