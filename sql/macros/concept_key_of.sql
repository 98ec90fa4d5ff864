-- concept_key_of: the key that the rollups carry for a concept URI (null when none has it).
create or replace macro concept_key_of(concept) as
    (select key from concept_keys where uri = concept);
