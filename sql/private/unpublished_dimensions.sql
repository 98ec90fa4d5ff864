-- unpublished_dimensions: the dimensions marked to be published again (their meta key
-- "unpublished:<name>" is "1": kpi.warehouse.private.mark_unpublished), read at once.
select substr(key, length('unpublished:') + 1) as name
from meta
where starts_with(key, 'unpublished:') and value = '1'
