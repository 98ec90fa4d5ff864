-- quality_daily: rejected and quarantined events per day of arrival, implementer, outcome and
-- reason; still_quarantined: how many of the quarantined still wait (null for rejected).
select day, implementer_id, outcome, reason, events, still_quarantined
from quality_daily
order by day, implementer_id, outcome, reason
