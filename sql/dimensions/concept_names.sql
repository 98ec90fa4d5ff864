-- concept_names: one preferred label per concept and language (the first alphabetically where
-- a version has several), from the newest version holding the concept.
select uri, language, min(label) as label
from current_labels
where kind = 'preferred'
group by uri, language
order by uri, language
