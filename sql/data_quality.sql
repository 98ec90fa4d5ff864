-- data_quality: rejected, quarantined and flagged events by day of receipt, implementer and
-- reason.
--
-- outcome: 'rejected' (never stored, only counted), 'quarantined' (stored, not counted until a
-- loaded release knows the concept and version) or 'flagged' (counted, with a problem: reason
-- esco_version_mismatch = the ESCO version the event names is loaded but lacks its concept).
-- events: how many events of that implementer received that day had that outcome and reason
-- (from the collector's outcome counters; a resent duplicate is not counted again);
-- still_quarantined: for quarantined rows, how many of them are still waiting for a catalogue
-- that knows their concept or version (quarantine replay counts the others); null for the
-- other outcomes. Ordered by day, implementer, outcome, reason.
--
-- Parameters: $start, $end (dates of receipt, inclusive); filters (NULL = all): $country,
-- $sector, $implementer_id.

with
quality as (
    select day, implementer_id, implementer, country, sector, outcome, reason, events,
           still_quarantined
    from period_rows('quality_daily', $start, $end, $country, $sector)
    where $implementer_id is null or implementer_id = $implementer_id
)

select
    day as received_on,
    implementer_id,
    implementer,
    country,
    sector,
    outcome,
    reason,
    events,
    still_quarantined
from quality
order by received_on, implementer_id, outcome, reason
