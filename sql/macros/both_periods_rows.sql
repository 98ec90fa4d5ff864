-- both_periods_rows: filtered_span_rows of a rollup over a period and the one before it, the
-- events and usage of each period in columns of their own (previous_events, current_events,
-- previous_usage, current_usage; 0 in the other period's rows). Each period is read apart,
-- from its own whole quarters and months where it has them (see span_rows): what an
-- indicator that compares a period with the one before reads (concept_trends).
create or replace macro both_periods_rows(
    rollup, previous_from, previous_to, from_day, to_day,
    only_concept_type, only_language, only_context, only_country, only_sector
) as table
    select
        *,
        events as previous_events, 0::bigint as current_events,
        usage as previous_usage, 0::bigint as current_usage
    from filtered_span_rows(rollup, previous_from, previous_to, only_concept_type,
                            only_language, only_context, only_country, only_sector)
    union all by name
    select
        *,
        0::bigint as previous_events, events as current_events,
        0::bigint as previous_usage, usage as current_usage
    from filtered_span_rows(rollup, from_day, to_day, only_concept_type,
                            only_language, only_context, only_country, only_sector);
