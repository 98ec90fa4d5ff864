-- clear_added_events: no staged additions (see stage_added_events).
delete from added_events
