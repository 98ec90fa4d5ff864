-- quality_daily: rebuilt from the ingest store's small, mutable counters (the registered Arrow
-- table `outcome_counters`: day, implementer_id, outcome, reason, events) for the outcomes
-- rejected (not stored, only counted), quarantined and flagged (counted events with a problem,
-- e.g. reason esco_version_mismatch: the ESCO version they name lacks their concept). For
-- quarantined ones, how many arrived and how many still wait for a catalogue that knows them
-- (`still_waiting`: day, implementer_id, reason, n) stand side by side; still_quarantined is
-- null for the other outcomes. reason is '' where the counters have none.
delete from quality_daily;

insert into quality_daily
with
counted as (
    select day, implementer_id, outcome, coalesce(reason, '') as reason,
           sum(events)::bigint as events
    from outcome_counters
    group by all
),

waiting as (
    select day, implementer_id, 'quarantined' as outcome,
           coalesce(reason, '') as reason, sum(n)::bigint as n
    from still_waiting
    group by all
)

select
    coalesce(c.day, w.day),
    coalesce(c.implementer_id, w.implementer_id),
    coalesce(c.outcome, w.outcome),
    coalesce(c.reason, w.reason),
    coalesce(c.events, 0),
    case when coalesce(c.outcome, w.outcome) = 'quarantined' then coalesce(w.n, 0) end
from counted as c
full join waiting as w
    on w.day = c.day and w.implementer_id = c.implementer_id
   and w.outcome = c.outcome and w.reason = c.reason;
