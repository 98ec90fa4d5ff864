-- stage_added_events: the events above the published watermark ($published) on days that are
-- not dirty, for the publish to add (see changed_events); run after clear_added_events. Rows
-- of a dirty day are left out: that day is recomputed from all of its events.
insert into added_events
select *
from events
where watermark > $published
  and day not in (select day from dirty_days)
