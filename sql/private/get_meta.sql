-- get_meta: one value of the private key-value state (no row when it was never set).
-- Parameters: $key.
select value from meta where key = $key
