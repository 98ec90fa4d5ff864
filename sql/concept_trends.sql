-- concept_trends: concepts, candidate-label groups and proposal groups whose use rose or fell
-- significantly against the previous period of equal length, after allowing for the change in
-- total volume.
--
-- Items: kind 'concept' (concept_used events, per concept), 'label' (label_added events whose
-- normalised label is not yet among the concept's labels in that language, per concept,
-- language and label_norm) and 'proposal' (concept_proposed events, per concept type, language
-- and label_norm). An item's share is its events over all events of its kind in the period, in
-- the same filters. The test counts events, not the sum of their `count`s: a count is a
-- portal's own aggregate, not that many independent observations.
--
-- The test: given an item's events in both periods together (n), under "its share did not
-- change" its events in the current period follow Binomial(n, q), q being the current period's
-- part of its kind's volume; p_value is the two-sided exact binomial test (the smaller tail,
-- doubled). Items with fewer than 10 events in both periods together are not tested (no such
-- item could reach significance); `tested` says how many were. p_adjusted: Benjamini-Hochberg
-- over every item tested, all kinds together.
--
-- A row is returned when the item is rising or falling: p_adjusted <= 0.05; the share changed
-- at least 1.5-fold (share_ratio >= 1.5 or <= 1/1.5; an item unseen in the previous period is
-- 'emerging'); at least reader_info.min_implementers implementers carried it in the period
-- where its use is larger; and the change still holds without the implementer whose own change
-- is largest in its direction (its events and its volume taken out, the share still changes
-- 1.5-fold the same way and its p_value stays within the Benjamini-Hochberg threshold, 0.05 *
-- discoveries / tested): one portal's surge is not a trend.
--
-- Columns: kind, trend ('rising', 'emerging' or 'falling'), concept_uri (null for proposals),
-- concept_type, language (null for concepts), label (concepts: preferred label in
-- $label_language, else English; labels and proposals: the most used spelling), label_en,
-- label_norm, previous_events, current_events, previous_usage, current_usage, share_ratio (null
-- when emerging), p_value, p_adjusted, previous_implementers, current_implementers, tested.
--
-- Parameters: $start, $end (dates, inclusive), $prev_start, $prev_end (the previous period),
-- $label_language; filters (NULL = all): $concept_type, $language, $country, $sector, $context.

with
concept_rows as (
    select day, concept_key, implementer_id, events, usage
    from filtered_rows('usage_daily', $prev_start, $end,
                       $concept_type, $language, $context, $country, $sector)
),

label_rows as (
    select l.day, l.concept_key, l.language, l.label_norm, l.label, l.implementer_id,
           l.events, l.usage
    from filtered_rows('labels_daily', $prev_start, $end,
                       $concept_type, $language, $context, $country, $sector) as l
    anti join concept_label_norms as kl
        on kl.concept_key = l.concept_key and kl.language = l.language
       and kl.label_norm = l.label_norm
    where l.label_norm <> ''
),

proposal_rows as (
    select day, concept_type, language, label_norm, label, implementer_id, events, usage
    from filtered_rows('proposals_daily', $prev_start, $end,
                       $concept_type, $language, $context, $country, $sector)
    where label_norm <> ''
),

-- one shape for the three kinds: an item is (kind, concept_key, concept_type, language,
-- label_norm), the columns a kind does not use left null
item_rows as (
    select 'concept' as kind, concept_key, null::varchar as concept_type,
           null::varchar as language, null::varchar as label_norm, day, implementer_id,
           events, usage
    from concept_rows
    union all
    select 'label', concept_key, null, language, label_norm, day, implementer_id, events, usage
    from label_rows
    union all
    select 'proposal', null, concept_type, language, label_norm, day, implementer_id, events,
           usage
    from proposal_rows
),

by_implementer as (
    select
        kind, concept_key, concept_type, language, label_norm, implementer_id,
        coalesce(sum(events) filter (where day <= $prev_end), 0) as previous_events,
        coalesce(sum(events) filter (where day >= $start), 0) as current_events,
        coalesce(sum(usage) filter (where day <= $prev_end), 0) as previous_usage,
        coalesce(sum(usage) filter (where day >= $start), 0) as current_usage
    from item_rows
    group by all
),

-- the volume a share is taken of: every event of the kind, per implementer and in all
implementer_volume as (
    select kind, implementer_id,
           sum(previous_events) as previous_volume, sum(current_events) as current_volume
    from by_implementer
    group by all
),

volume as (
    select kind, sum(previous_volume) as previous_volume, sum(current_volume) as current_volume
    from implementer_volume
    group by kind
),

items as (
    select
        kind, concept_key, concept_type, language, label_norm,
        sum(previous_events) as previous_events,
        sum(current_events) as current_events,
        sum(previous_usage) as previous_usage,
        sum(current_usage) as current_usage,
        count(*) filter (where previous_events > 0) as previous_implementers,
        count(*) filter (where current_events > 0) as current_implementers,
        -- the implementer whose own change is largest each way (ties: the lowest id)
        arg_max(implementer_id, (current_events - previous_events, -implementer_id))
            as top_riser,
        arg_max(implementer_id, (previous_events - current_events, -implementer_id))
            as top_faller
    from by_implementer
    group by all
),

tested as (
    select
        i.*,
        v.previous_volume,
        v.current_volume,
        binomial_p_value(
            i.current_events::bigint, (i.previous_events + i.current_events)::bigint,
            v.current_volume / (v.previous_volume + v.current_volume)
        ) as p_value,
        -- rising: its share of the current period's volume is larger than of the previous
        i.current_events * v.previous_volume > i.previous_events * v.current_volume as rises
    from items as i
    join volume as v using (kind)
    where i.previous_events + i.current_events >= 10
),

ranked as (
    select
        *,
        row_number() over (order by p_value, kind, concept_key, concept_type, language,
                           label_norm) as p_rank,
        count(*) over () as tested_items
    from tested
),

-- Benjamini-Hochberg: p * m / rank, made monotone from the largest p down, at most 1
adjusted as (
    select
        *,
        least(1.0, min(p_value * tested_items / p_rank) over (
            order by p_rank desc rows between unbounded preceding and current row
        )) as p_adjusted
    from ranked
),

-- the Benjamini-Hochberg threshold: a p-value at most 0.05 * discoveries / tested is a
-- discovery
cutoff as (
    select 0.05 * count(*) filter (where p_adjusted <= 0.05) / any_value(tested_items)
           as p_cutoff
    from adjusted
),

-- the candidates: significant, 1.5-fold, carried by enough implementers
candidates as (
    select a.*, case when a.rises then a.top_riser else a.top_faller end as top_implementer
    from adjusted as a
    where a.p_adjusted <= 0.05
      and case
              when a.rises then
                  a.previous_events = 0
                  or a.current_events * a.previous_volume
                      >= 1.5 * a.previous_events * a.current_volume
              else a.previous_events * a.current_volume
                      >= 1.5 * a.current_events * a.previous_volume
          end
      and case when a.rises then a.current_implementers else a.previous_implementers end
          >= (select min_implementers from reader_info)
),

-- the same item with its top implementer's events and volume taken out
without_top as (
    select
        c.*,
        c.previous_events - coalesce(b.previous_events, 0) as previous_rest,
        c.current_events - coalesce(b.current_events, 0) as current_rest,
        c.previous_volume - coalesce(iv.previous_volume, 0) as previous_volume_rest,
        c.current_volume - coalesce(iv.current_volume, 0) as current_volume_rest
    from candidates as c
    left join by_implementer as b
        on b.kind = c.kind and b.implementer_id = c.top_implementer
       and b.concept_key is not distinct from c.concept_key
       and b.concept_type is not distinct from c.concept_type
       and b.language is not distinct from c.language
       and b.label_norm is not distinct from c.label_norm
    left join implementer_volume as iv
        on iv.kind = c.kind and iv.implementer_id = c.top_implementer
),

holding as (
    select w.*
    from without_top as w, cutoff
    where w.previous_volume_rest > 0
      and w.current_volume_rest > 0
      and w.previous_rest + w.current_rest > 0
      and binomial_p_value(
              w.current_rest::bigint, (w.previous_rest + w.current_rest)::bigint,
              w.current_volume_rest / (w.previous_volume_rest + w.current_volume_rest)
          ) <= cutoff.p_cutoff
      and case
              when w.rises then
                  w.current_rest * w.previous_volume_rest
                      >= 1.5 * w.previous_rest * w.current_volume_rest
              else w.previous_rest * w.current_volume_rest
                      >= 1.5 * w.current_rest * w.previous_volume_rest
          end
),

-- the most used spelling of each label and proposal group (ties: most events, then
-- alphabetical)
spellings as (
    select kind, concept_key, concept_type, language, label_norm,
           first(label order by usage desc, events desc, label) as label
    from (
        select 'label' as kind, concept_key, null::varchar as concept_type, language,
               label_norm, label, sum(usage) as usage, sum(events) as events
        from label_rows
        group by all
        union all
        select 'proposal', null, concept_type, language, label_norm, label, sum(usage),
               sum(events)
        from proposal_rows
        group by all
    )
    group by all
)

select
    h.kind,
    case
        when not h.rises then 'falling'
        when h.previous_events = 0 then 'emerging'
        else 'rising'
    end as trend,
    ck.uri as concept_uri,
    coalesce(h.concept_type, k.concept_type) as concept_type,
    h.language,
    coalesce(s.label, chosen.label, en.label) as label,
    en.label as label_en,
    h.label_norm,
    h.previous_events,
    h.current_events,
    h.previous_usage,
    h.current_usage,
    case
        when h.previous_events > 0 and h.current_volume > 0
            then round((h.current_events / h.current_volume)
                       / (h.previous_events / h.previous_volume), 3)
    end as share_ratio,
    h.p_value,
    h.p_adjusted,
    h.previous_implementers,
    h.current_implementers,
    h.tested_items as tested
from holding as h
left join concept_keys as ck on ck.key = h.concept_key
left join concepts as k on k.uri = ck.uri
left join concept_names as en on en.uri = ck.uri and en.language = 'en'
left join concept_names as chosen
    on chosen.uri = ck.uri and chosen.language = $label_language
left join spellings as s
    on s.kind = h.kind
   and s.concept_key is not distinct from h.concept_key
   and s.concept_type is not distinct from h.concept_type
   and s.language is not distinct from h.language
   and s.label_norm is not distinct from h.label_norm
order by
    case when h.rises then 0 else 1 end,
    h.p_adjusted,
    h.kind,
    ck.uri,
    h.concept_type,
    h.language,
    h.label_norm
