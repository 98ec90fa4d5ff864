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
-- The test: given an item's events in both periods together (n), its events in the current
-- period follow a binomial law whose rate says how its share changed. The null hypothesis is
-- "the share changed less than 1.25-fold" (thresholds.tested_fold), a test against a
-- fold-change threshold rather than against no change: when many items change a little for
-- real (a portal with its own preferences grows), testing against no change makes them all
-- discoveries, and Benjamini-Hochberg then lets noise through with them. p_value is the
-- two-sided exact test (fold_change_p_value): the events now are too many for a 1.25-fold
-- rise or too few for a 1.25-fold fall. Items with fewer than 10 events in both periods
-- together are not tested (none could reach significance); `tested` says how many were.
-- p_adjusted: Benjamini-Hochberg over every item tested, all kinds together.
--
-- A row is returned when the item is rising or falling: p_adjusted <= 0.05; its share changed
-- at least 1.5-fold (share_ratio >= 1.5 or <= 1/1.5; an item unseen in the previous period is
-- 'emerging'); at least reader_info.min_implementers implementers carried it in the period
-- where its use is larger; and the change holds without any one implementer, so without the
-- one that contributes most to it (its events and its volume taken out, the share still moves
-- the same way and its p_value stays within the Benjamini-Hochberg threshold, 0.05 *
-- discoveries / tested): one portal's surge, or its growth alone, is not a trend.
--
-- Columns: kind, trend ('rising', 'emerging' or 'falling'), concept_uri (null for proposals),
-- concept_type, language (null for concepts), label (concepts: preferred label in
-- $label_language, else English; labels and proposals: the most used spelling), label_en,
-- label_norm, previous_events, current_events, previous_usage, current_usage, share_ratio (null
-- when emerging), p_value, p_adjusted, previous_implementers, current_implementers, tested.
--
-- Parameters: $period, $previous (the bounds of the period and of the previous one),
-- $label_language; filters (NULL = all): $concept_type, $language, $country, $sector, $context.

with
thresholds as (
    select
        1.25 as tested_fold,  -- the null hypothesis: the share changed less than this
        1.5 as min_fold,  -- a trend changed at least this much
        10 as min_tested_events  -- fewer events in both periods could never be significant
),

-- Each kind's rows of the two periods, the events and usage of each period in columns of
-- their own. Each period is read from its whole quarters and months where it has them, both
-- in one read of each table (two_span_rows: 9 % less time than a read per period), and each
-- kind is grouped by its own key columns below: integers for concepts, which are most of the
-- rows, instead of five columns mostly null.
concept_rows as (
    select concept_key, implementer_id,
           if(previous, events, 0) as previous_events, if(previous, 0, events) as current_events,
           if(previous, usage, 0) as previous_usage, if(previous, 0, usage) as current_usage
    from two_span_rows('usage', $previous, $period,
                       $concept_type, $language, $context, $country, $sector)
),

-- the rows of labels not yet among the concept's labels in that language (the catalogue test
-- is per item, so a row is left out exactly when its item is)
label_rows as (
    select l.concept_key, l.language, l.label_norm, l.label, l.implementer_id,
           if(l.previous, l.events, 0) as previous_events,
           if(l.previous, 0, l.events) as current_events,
           if(l.previous, l.usage, 0) as previous_usage,
           if(l.previous, 0, l.usage) as current_usage
    from two_span_rows('labels', $previous, $period,
                       $concept_type, $language, $context, $country, $sector) as l
    anti join used_label_norms as kl
        on kl.concept_key = l.concept_key and kl.language = l.language
       and kl.label_norm = l.label_norm
    where l.label_norm <> ''
),

proposal_rows as (
    select concept_type, language, label_norm, label, implementer_id,
           if(previous, events, 0) as previous_events, if(previous, 0, events) as current_events,
           if(previous, usage, 0) as previous_usage, if(previous, 0, usage) as current_usage
    from two_span_rows('proposals', $previous, $period,
                       $concept_type, $language, $context, $country, $sector)
    where label_norm <> ''
),

-- Per item, the sums of both periods. Items are grouped by their own key only, not per item
-- and implementer: the test needs the sums, and only the few discoveries need their rows per
-- implementer (changed_rows). Grouping every row per item and implementer cost a third of
-- the query. Concepts are also summed per implementer in the same pass (per_implementer: the
-- volume below).
concept_items as (
    select
        concept_key, implementer_id, grouping(concept_key) = 1 as per_implementer,
        sum(previous_events) as previous_events, sum(current_events) as current_events,
        sum(previous_usage) as previous_usage, sum(current_usage) as current_usage
    from concept_rows
    group by grouping sets ((concept_key), (implementer_id))
),

-- per label item, and per implementer in the same pass (the volume below)
label_items as (
    select
        concept_key, language, label_norm, implementer_id,
        grouping(concept_key, language, label_norm) = 7 as per_implementer,
        sum(previous_events) as previous_events, sum(current_events) as current_events,
        sum(previous_usage) as previous_usage, sum(current_usage) as current_usage
    from label_rows
    group by grouping sets ((concept_key, language, label_norm), (implementer_id))
),

proposal_items as (
    select
        concept_type, language, label_norm,
        sum(previous_events) as previous_events, sum(current_events) as current_events,
        sum(previous_usage) as previous_usage, sum(current_usage) as current_usage
    from proposal_rows
    group by concept_type, language, label_norm
),

-- the volume a share is taken of: every event of the kind, per implementer and in all
implementer_volume as (
    select 'concept' as kind, implementer_id,
           previous_events as previous_volume, current_events as current_volume
    from concept_items
    where per_implementer
    union all
    select 'label', implementer_id, previous_events, current_events
    from label_items
    where per_implementer
    union all
    select 'proposal', implementer_id, sum(previous_events), sum(current_events)
    from proposal_rows
    group by implementer_id
),

volume as (
    select kind, sum(previous_volume) as previous_volume, sum(current_volume) as current_volume
    from implementer_volume
    group by kind
),

-- one shape for the three kinds: an item is (kind, concept_key, concept_type, language,
-- label_norm), the columns a kind does not use left null
items as (
    select
        'concept' as kind, concept_key, null::varchar as concept_type,
        null::varchar as language, null::varchar as label_norm,
        previous_events, current_events, previous_usage, current_usage
    from concept_items
    where not per_implementer
    union all
    select
        'label', concept_key, null, language, label_norm,
        previous_events, current_events, previous_usage, current_usage
    from label_items
    where not per_implementer
    union all
    select
        'proposal', null, concept_type, language, label_norm,
        previous_events, current_events, previous_usage, current_usage
    from proposal_items
),

tested as (
    select
        i.*,
        v.previous_volume,
        v.current_volume,
        fold_change_p_value(
            i.current_events::bigint, (i.previous_events + i.current_events)::bigint,
            -- the current period's part of the events if the share rose by the tested fold, or
            -- fell so
            t.tested_fold * v.current_volume
                / (v.previous_volume + t.tested_fold * v.current_volume),
            v.current_volume / (t.tested_fold * v.previous_volume + v.current_volume)
        ) as p_value,
        -- rising: its share of the current period's volume is larger than of the previous
        i.current_events * v.previous_volume > i.previous_events * v.current_volume as rises
    from items as i
    join volume as v using (kind)
    cross join thresholds as t
    where i.previous_events + i.current_events >= t.min_tested_events
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

-- the discoveries that changed at least min_fold
changed as (
    select a.*
    from adjusted as a
    cross join thresholds as t
    where a.p_adjusted <= 0.05
      and case
              when a.rises then a.current_events * a.previous_volume
                                >= t.min_fold * a.previous_events * a.current_volume
              else a.previous_events * a.current_volume
                       >= t.min_fold * a.current_events * a.previous_volume
          end
),

-- their rows per implementer, in the shape of items (a label's rows are all its item's: the
-- catalogue test is per item)
changed_rows as (
    select 'concept' as kind, r.concept_key, null::varchar as concept_type,
           null::varchar as language, null::varchar as label_norm, r.implementer_id,
           sum(r.previous_events) as previous_events, sum(r.current_events) as current_events
    from concept_rows as r
    semi join changed as c
        on c.kind = 'concept' and c.concept_key is not distinct from r.concept_key
    group by r.concept_key, r.implementer_id
    union all
    select 'label', r.concept_key, null, r.language, r.label_norm, r.implementer_id,
           sum(r.previous_events), sum(r.current_events)
    from label_rows as r
    semi join changed as c
        on c.kind = 'label' and c.concept_key is not distinct from r.concept_key
       and c.language is not distinct from r.language
       and c.label_norm is not distinct from r.label_norm
    group by r.concept_key, r.language, r.label_norm, r.implementer_id
    union all
    select 'proposal', null, r.concept_type, r.language, r.label_norm, r.implementer_id,
           sum(r.previous_events), sum(r.current_events)
    from proposal_rows as r
    semi join changed as c
        on c.kind = 'proposal' and c.concept_type is not distinct from r.concept_type
       and c.language is not distinct from r.language
       and c.label_norm is not distinct from r.label_norm
    group by r.concept_type, r.language, r.label_norm, r.implementer_id
),

-- those carried by enough implementers, in the period where their use is larger
candidates as (
    select c.*, n.previous_implementers, n.current_implementers
    from changed as c
    join (
        select
            kind, concept_key, concept_type, language, label_norm,
            count(*) filter (where previous_events > 0) as previous_implementers,
            count(*) filter (where current_events > 0) as current_implementers
        from changed_rows
        group by kind, concept_key, concept_type, language, label_norm
    ) as n
        on n.kind = c.kind
       and n.concept_key is not distinct from c.concept_key
       and n.concept_type is not distinct from c.concept_type
       and n.language is not distinct from c.language
       and n.label_norm is not distinct from c.label_norm
    where case when c.rises then n.current_implementers else n.previous_implementers end
          >= (select min_implementers from reader_info)
),

-- each candidate without each implementer of its kind in turn: its events and volume out
without_one as (
    select
        c.kind, c.concept_key, c.concept_type, c.language, c.label_norm, c.rises,
        c.previous_events - coalesce(b.previous_events, 0) as previous_rest,
        c.current_events - coalesce(b.current_events, 0) as current_rest,
        c.previous_volume - iv.previous_volume as previous_volume_rest,
        c.current_volume - iv.current_volume as current_volume_rest
    from candidates as c
    join implementer_volume as iv on iv.kind = c.kind
    left join changed_rows as b
        on b.kind = c.kind and b.implementer_id = iv.implementer_id
       and b.concept_key is not distinct from c.concept_key
       and b.concept_type is not distinct from c.concept_type
       and b.language is not distinct from c.language
       and b.label_norm is not distinct from c.label_norm
),

without_one_tested as (
    select
        *,
        previous_volume_rest > 0 and current_volume_rest > 0
        and previous_rest + current_rest > 0
        and (current_rest * previous_volume_rest > previous_rest * current_volume_rest) = rises
        and fold_change_p_value(
                current_rest::bigint, (previous_rest + current_rest)::bigint,
                t.tested_fold * current_volume_rest
                    / (previous_volume_rest + t.tested_fold * current_volume_rest),
                current_volume_rest / (t.tested_fold * previous_volume_rest + current_volume_rest)
            ) <= (select p_cutoff from cutoff) as holds
    from without_one
    cross join thresholds as t
),

holding as (
    select c.*
    from candidates as c
    semi join (
        select kind, concept_key, concept_type, language, label_norm
        from without_one_tested
        group by all
        having bool_and(holds)
    ) as h
        on h.kind = c.kind
       and h.concept_key is not distinct from c.concept_key
       and h.concept_type is not distinct from c.concept_type
       and h.language is not distinct from c.language
       and h.label_norm is not distinct from c.label_norm
),

-- the label and proposal rows of the items shown, for their groups' most used spelling (see
-- label_groups), taken from label_rows and proposal_rows: an item shown is not in the
-- catalogue and has a label_norm, so its rows there are exactly its rows. Reading the rollups
-- again for them cost about a tenth of this query, even when no item is shown. Both periods
-- together: label_groups only sums, and a complemented month's negated rows (two_span_rows)
-- take out exactly what its sums hold outside the period (a spelling seen only there sums to
-- nothing, and every spelling seen in the periods to at least one event).
spelling_rows as (
    select 'label' as kind, l.concept_key, null::varchar as concept_type, l.language,
           l.label_norm, l.label, l.implementer_id,
           l.previous_usage + l.current_usage as usage,
           l.previous_events + l.current_events as events
    from label_rows as l
    semi join holding as h
        on h.kind = 'label' and h.concept_key is not distinct from l.concept_key
       and h.language is not distinct from l.language
       and h.label_norm is not distinct from l.label_norm
    union all
    select 'proposal', null, p.concept_type, p.language, p.label_norm, p.label,
           p.implementer_id, p.previous_usage + p.current_usage,
           p.previous_events + p.current_events
    from proposal_rows as p
    semi join holding as h
        on h.kind = 'proposal' and h.concept_type is not distinct from p.concept_type
       and h.language is not distinct from p.language
       and h.label_norm is not distinct from p.label_norm
),

spellings as (
    select kind, concept_key, concept_type, language, label_norm, label
    from label_groups(spelling_rows)
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
