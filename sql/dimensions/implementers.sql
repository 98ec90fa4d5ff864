-- implementers: every registered implementer, with its country and sector (the filters).
select id, name, country, sector
from implementers
order by id
