-- used_label_norms: the catalogue's normalised labels (concept_label_norms) that the
-- normalised label of some label_added event equals, for the same concept and language. It is
-- all that comparing the events' labels with the catalogue's can find, in a table of some
-- 40,000 rows instead of the catalogue's 424,065 (10 M events): the queries that do so
-- (concept_trends, kpi_counts, candidate_alt_labels, review_items, implementer_suggestions)
-- read it instead, 10-18 % less time for the first three. From the label rows of every day
-- (each quarter's rows cover its days). A dashboard worker's reader holds it as a table, made
-- once per publish (about 50 ms at 10 M events); a reader opened for one export or one query
-- reads all of concept_label_norms under this name instead, which gives those joins the same
-- answers (kpi.warehouse.reader.install_reader_tables).
with
event_label_norms as (
    select distinct concept_key, language, label_norm
    from labels_quarterly
)

select kl.concept_key, kl.language, kl.label_norm
from concept_label_norms as kl
semi join event_label_norms as e
    on e.concept_key = kl.concept_key and e.language = kl.language
   and e.label_norm = kl.label_norm
