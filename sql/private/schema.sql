-- schema: the aggregator's private DuckDB database (aggregator.duckdb), created when missing.
-- Only the aggregator opens this file; readers see what it publishes (see rollups/ and
-- dimensions/). Bump kpi.warehouse.private.FORMAT when a table changes shape.

-- Key-value state: format, watermark, hashes of copied sources, unpublished:<dimension> flags.
create table if not exists meta (key varchar primary key, value varchar);

-- Accepted ingest events, grouped per batch by every field the indicators need (no comments):
-- count = sum of their `count`s, events = how many ingest events. Grouping a batch before it is
-- stored makes the copy a fraction of the events it stands for. concept_key: the key of the
-- event's concept (concept_keys below; the broader concept for concept_proposed, null when it
-- names none): a 60-odd-character URI per row made appending a tenth slower and the file
-- larger. concept_type: the proposed concept's type for concept_proposed, else the
-- catalogue's type of the concept. label_norm: kpi.catalogue's normalise_label(label),
-- computed in Python.
-- watermark: the aggregator's watermark when the row was appended (the ingest id it read up
-- to; 0 for rows appended before this column existed). Rows above the published manifest's
-- watermark are not in the published rollups yet.
create table if not exists events (
    implementer_id integer, type varchar, day date, concept_key integer,
    concept_type varchar, esco_version varchar, language varchar, context varchar,
    label varchar, label_norm varchar, count bigint, events bigint, watermark bigint);

alter table events add column if not exists watermark bigint default 0;

-- The events that the next publish adds to the published rollups of days that are not dirty,
-- as new files beside each day's files: those above the published watermark (filled by
-- stage_added_events.sql, emptied once the manifest names their files). Shaped as `events`.
create table if not exists added_events as select * from events limit 0;

-- A small integer per concept URI, assigned once and never changed: the rollups carry the key,
-- not the 60-odd-character URI, which makes them a seventh of the size and the indicators'
-- GROUP BYs several times faster. Published as the concept_keys dimension.
create table if not exists concept_keys (uri varchar primary key, key integer not null);

-- Days whose rollups the next publish recomputes whole (from every event of the day).
create table if not exists dirty_days (day date primary key);

-- The catalogue, copied from the ingest store per version; rank orders versions (1 = oldest).
create table if not exists cat_versions (
    version varchar primary key, rank integer, loaded_at varchar, source varchar,
    concepts bigint, labels bigint, languages varchar);

create table if not exists cat_concepts (
    version varchar, uri varchar, concept_type varchar, status varchar);

-- form_norms: for a gendered label written "form1/form2", each form normalised (else null),
-- so that an implementer's label matching one form is not reported as new. label and
-- label_norm are stored uncompressed: nearly every value is distinct, and DuckDB's string
-- compression, weighing how to compress them, made committing a release's 385,000 labels take
-- three times as long (0.7 s against 0.25 s, on the path of the first run after `init`) for
-- 14 MB less in the file.
create table if not exists cat_labels (
    version varchar, uri varchar, language varchar, kind varchar,
    label varchar using compression uncompressed,
    label_norm varchar using compression uncompressed, form_norms varchar[]);

-- ESCO's collections (green, digital, ...) and the URIs each release says it replaced.
create table if not exists cat_collections (version varchar, collection varchar, uri varchar);

create table if not exists cat_successors (
    version varchar, uri varchar, successor_uri varchar, source varchar);

-- Per URI: its type, status in the newest loaded version, and the newest version holding it
-- (rebuilt by concept_info.sql whenever the catalogue changes).
create table if not exists concept_info (
    uri varchar primary key, concept_type varchar, status varchar,
    current_version varchar, in_newest boolean);

-- Per replaced URI: the concept that carries it now (rebuilt by concept_info.sql). Events
-- naming a replaced URI are counted under its successor.
create table if not exists successor_of (
    uri varchar primary key, successor_uri varchar, version varchar, source varchar);

create table if not exists implementers (
    id integer, name varchar, country varchar, sector varchar);

-- Rejected, quarantined and flagged events per day of arrival (rebuilt by quality_daily.sql).
create table if not exists quality_daily (
    day date, implementer_id integer, outcome varchar, reason varchar, events bigint,
    still_quarantined bigint);
