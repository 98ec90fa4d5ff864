-- replace_implementers: the implementers, copied whole from the ingest store (the registered
-- Arrow table `store_implementers`: id, name, country, sector).
delete from implementers;

insert into implementers
select id, name, country, sector from store_implementers;
