-- new_concept_proposals: concepts that implementers proposed (concept_proposed events),
-- grouped by normalised label, concept type and language.
--
-- label_norm: the normalised proposed label (NFKD, accents removed, case-folded, non
-- letter/digit -> space, spaces collapsed, trimmed); label: the group's most used original
-- spelling (ties: most events, then alphabetical); implementers (distinct), events, usage (sum
-- of `count`); broader_uris: the broader concepts the proposals named (sorted), with their
-- English preferred labels in broader_labels_en (same order; null when unknown).
--
-- Parameters: $period (its bounds); filters (NULL = all): $concept_type (the
-- proposed concept's type), $language, $country, $sector, $context.

with
proposed as (
    select p.concept_type, p.language, p.label_norm, p.label, b.uri as broader_uri,
           p.implementer_id, p.usage, p.events
    from filtered_span_rows('proposals', $period,
                            $concept_type, $language, $context, $country, $sector) as p
    left join concept_keys as b on b.key = p.broader_key
    where p.label_norm <> ''
),

-- grouped by concept_type, language and label_norm (see label_groups)
proposed_labels as (
    select concept_type, language, label_norm, label, implementer_id, usage, events
    from proposed
),

broader as (
    select
        b.concept_type,
        b.language,
        b.label_norm,
        list(b.broader_uri order by b.broader_uri) as broader_uris,
        list(n.label order by b.broader_uri) as broader_labels_en
    from (
        select distinct concept_type, language, label_norm, broader_uri
        from proposed
        where broader_uri is not null
    ) as b
    left join concept_names as n on n.uri = b.broader_uri and n.language = 'en'
    group by b.concept_type, b.language, b.label_norm
)

select
    g.label_norm,
    g.label,
    g.concept_type,
    g.language,
    g.spellings,
    g.implementers,
    g.events,
    g.usage,
    coalesce(b.broader_uris, []::varchar[]) as broader_uris,
    coalesce(b.broader_labels_en, []::varchar[]) as broader_labels_en
from label_groups(proposed_labels) as g
left join broader as b
    on b.concept_type = g.concept_type and b.language = g.language
   and b.label_norm = g.label_norm
order by g.implementers desc, g.events desc, g.label_norm, g.concept_type, g.language
