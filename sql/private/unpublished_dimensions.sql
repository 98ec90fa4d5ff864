-- unpublished_dimensions: the dimensions marked to be published again (their meta key is
-- $prefix and the dimension's name, its value "1": kpi.warehouse.private.mark_unpublished),
-- read at once.
select substr(key, length($prefix) + 1) as name
from meta
where starts_with(key, $prefix) and value = '1'
