-- newest_concepts: the concepts (uri, concept_type) of the catalogue version in force, the
-- newest loaded one, of one type (NULL = every type).
create or replace macro newest_concepts(only_concept_type) as table
    select uri, concept_type
    from concepts
    where in_newest
      and (only_concept_type is null or concept_type = only_concept_type);
