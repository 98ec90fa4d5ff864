-- review_summary: the review loop per kind and language: how many items are open, accepted,
-- rejected, deferred, released and covered, and how long decisions and releases take.
--
-- Reads review_statuses, one row per review item, which kpi.review.summary registers (the
-- statuses come from the audit trail in the ingest store, which no warehouse reader sees):
-- kind, language, status, first_seen (the first day an implementer sent it), decided_on (the
-- day of the latest reviewer's decision, null when none) and released_on (the day
-- reconciliation found it in a release, null when not released).
-- days_to_decision: median days from first_seen to decided_on, over decided items;
-- days_to_release: median days from decided_on to released_on, over released items.
--
-- Parameters (NULL = all): $kind, $language.

with
items as (
    select kind, language, status, first_seen, decided_on, released_on
    from review_statuses
    where ($kind is null or kind = $kind)
      and ($language is null or language = $language)
)

select
    kind,
    language,
    count(*) filter (where status = 'open') as open,
    count(*) filter (where status = 'accepted') as accepted,
    count(*) filter (where status = 'rejected') as rejected,
    count(*) filter (where status = 'deferred') as deferred,
    count(*) filter (where status = 'released') as released,
    count(*) filter (where status = 'covered') as covered,
    median(decided_on - first_seen) as days_to_decision,
    median(released_on - decided_on) as days_to_release
from items
group by kind, language
order by kind, language
