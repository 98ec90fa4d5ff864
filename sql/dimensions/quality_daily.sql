-- quality_daily: rejected, quarantined and flagged (counted, but the named ESCO version lacks
-- the concept) events per day of arrival, implementer, outcome and reason; still_quarantined:
-- how many of the quarantined still wait (null for the others).
select day, implementer_id, outcome, reason, events, still_quarantined
from quality_daily
order by day, implementer_id, outcome, reason
