-- label_groups: free-text labels grouped. `rows` (a table, view or CTE name) has a label, usage,
-- events and implementer_id per row; every other column of it is the group's key (for example
-- concept_key, language, label_norm). One row per key: label, the group's most used original
-- spelling (ties: most events, then alphabetical); spellings, how many distinct spellings;
-- events, usage (sum of `count`) and implementers (distinct).
--
-- Written for speed, the answers unchanged: a spelling's implementers are listed as they come
-- and made distinct once per group (a DISTINCT list per spelling costs four times as much),
-- and a group's spellings are its rows here (one per label), so they are counted, not made
-- distinct again.
create or replace macro label_groups(rows) as table
    with
    spellings as (
        select
            * exclude (label, usage, events, implementer_id),
            label,
            sum(usage) as usage,
            sum(events) as events,
            list(implementer_id) as implementer_ids
        from query_table(rows)
        group by all
    )

    select
        * exclude (label, usage, events, implementer_ids),
        first(label order by usage desc, events desc, label) as label,
        count(label) as spellings,
        sum(events) as events,
        sum(usage) as usage,
        len(list_distinct(flatten(list(implementer_ids)))) as implementers
    from spellings
    group by all;
