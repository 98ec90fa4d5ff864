-- usage_per_language: concept usage per language within a period, and nothing else: what
-- language_usage gives as `usage`, for a caller that needs no more (the Overview's chart).
-- Read from the activity rollup, whose rows are a fraction of the usage rollup's (no concept in
-- their key), as usage_per_bucket is.
--
-- One row per language that has usage: language, usage (sum of `count` over concept_used
-- events). Ordered as language_usage: by usage descending, then language.
--
-- Parameters: $period (its bounds); filters (NULL = all): $concept_type,
-- $language, $country, $sector, $context.

with
used as (
    select language, usage
    from filtered_span_rows('activity', $period,
                            $concept_type, $language, $context, $country, $sector)
    where type = 'concept_used'
),

by_language as (
    select language, sum(usage) as usage
    from used
    group by language
)

select language, usage
from by_language
order by usage desc, language
