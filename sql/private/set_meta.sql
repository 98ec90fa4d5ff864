-- set_meta: set one value of the private key-value state.
-- Parameters: $key, $value.
insert or replace into meta (key, value) values ($key, $value)
