-- current_labels: the catalogue labels of the newest version holding each concept, so that a
-- concept a new release dropped keeps its last labels. What the label dimensions publish.
create or replace temp view current_labels as
    select l.uri, l.language, l.kind, l.label, l.label_norm
    from cat_labels as l
    join concept_info as c on c.uri = l.uri and c.current_version = l.version;
