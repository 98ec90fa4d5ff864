"""The ingest store: one SQLAlchemy database holding events, the registry and the catalogue.

SQLite (WAL, synchronous=FULL) by default, PostgreSQL by URL. A commit here is what makes a
202 true, so the engine is set up for durability first.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateColumn

from kpi.settings import Settings

metadata = MetaData()

# SQLite only turns an INTEGER PRIMARY KEY into an auto-incrementing rowid.
_BigId = BigInteger().with_variant(Integer, "sqlite")

implementers = Table(
    "implementers", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("country", String(2), nullable=False),
    Column("sector", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", Integer, primary_key=True),
    Column("implementer_id", Integer, ForeignKey("implementers.id"), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    # set when a newer key replaced this one: it keeps working until then
    Column("expires_at", DateTime(timezone=True)),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(300), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # viewer | reviewer (kpi.store.registry.ROLES); added after the first release, see
    # ADDED_COLUMNS
    Column("role", String(16), nullable=False, server_default="viewer"),
)

catalogue_versions = Table(
    "catalogue_versions", metadata,
    Column("version", String(20), primary_key=True),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    Column("source", String(500), nullable=False),
    Column("concepts", Integer, nullable=False),
    Column("labels", Integer, nullable=False),
    # the languages having labels, comma-separated; added after the first release
    Column("languages", String(200), nullable=False, server_default=""),
    # JSON: what the loads of this release read, ignored and warned about (`catalogue list`);
    # added after the first release
    Column("report", Text),
)

concepts = Table(
    "concepts", metadata,
    Column("version", String(20), primary_key=True),
    Column("uri", String(200), primary_key=True),
    Column("concept_type", String(20), nullable=False),  # occupation | skill | isco | ...
    Column("status", String(20), nullable=False),
    # ESCO's `code` column (ISCO code, occupation code, skill-group code such as S2.9.0);
    # added after the first release
    Column("code", String(40)),
)

# ESCO's collections (green, digital, digcomp, transversal, language, research skills;
# research_occupations), per release, from the release's *Collection_<lang>.csv files.
concept_collections = Table(
    "concept_collections", metadata,
    Column("version", String(20), primary_key=True),
    Column("collection", String(40), primary_key=True),
    Column("uri", String(200), primary_key=True),
)

# URIs that a release replaced, and by what: a release states them (for instance the `code`
# column of a skill group names its old code-style URI .../skill/S2.9.0).
concept_successors = Table(
    "concept_successors", metadata,
    Column("version", String(20), primary_key=True),  # the release that states it
    Column("uri", String(200), primary_key=True),  # the replaced URI
    Column("successor_uri", String(200), nullable=False),
    Column("source", String(40), nullable=False),  # how the release states it: code | ...
)

concept_labels = Table(
    "concept_labels", metadata,
    Column("version", String(20), nullable=False),
    Column("uri", String(200), nullable=False),
    Column("language", String(2), nullable=False),
    Column("kind", String(10), nullable=False),  # preferred | alt | hidden
    Column("label", Text, nullable=False),
    Index("ix_concept_labels_uri", "version", "uri", "language"),
)

# The accepted events of every type but concept_used, as SQL (see ix_events_other_accepted).
OTHER_ACCEPTED = "status = 'accepted' and type <> 'concept_used'"

events = Table(
    "events", metadata,
    # ids grow with each commit: the aggregator's watermark
    Column("id", _BigId, primary_key=True, autoincrement=True),
    # No foreign key to implementers: the collector writes only the id of the implementer whose
    # key it authenticated, and implementers are never deleted. On PostgreSQL the check was a
    # trigger per row, a quarter of the time of an insert of 1,000 events (see
    # DROPPED_FOREIGN_KEYS for older stores).
    Column("implementer_id", Integer, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("type", String(24), nullable=False),
    Column("day", Date, nullable=False),
    Column("concept_uri", String(200)),
    Column("esco_version", String(20), nullable=False),
    Column("language", String(2), nullable=False),
    Column("context", String(16), nullable=False),
    Column("count", Integer, nullable=False),
    Column("label", String(200)),
    Column("concept_type", String(16)),
    Column("comment", String(1000)),
    Column("status", String(12), nullable=False),  # accepted | quarantined
    Column("quarantine_reason", String(40)),
    Column("received_on", Date, nullable=False),
    UniqueConstraint("implementer_id", "event_id", name="uq_events_implementer_event"),
    # Only quarantined rows are ever looked up by status: a partial index costs accepted
    # inserts nothing. It holds what the aggregator counts of them at every run (per day of
    # receipt, implementer and reason), so that count never reads the table itself.
    Index("ix_events_quarantined_by_day", "status", "received_on", "implementer_id",
          "quarantine_reason", sqlite_where=text("status = 'quarantined'"),
          postgresql_where=text("status = 'quarantined'")),
    # The aggregator reads each id range twice: its concept_used events by the primary key,
    # and the other accepted events, a tenth of them, by this partial index (which the
    # concept_used inserts skip), instead of walking every event of the range again: over
    # 10 M events 4-7 CPU-s less for PostgreSQL's server and a full refresh a tenth faster;
    # on SQLite the query itself 2.0-2.6 -> 1.2 CPU-s, too little to show in a full refresh
    # (bench/RESULTS.md). Its query has OTHER_ACCEPTED itself: a planner takes a partial
    # index only for a query whose condition implies the index's own.
    Index("ix_events_other_accepted", "id", sqlite_where=text(OTHER_ACCEPTED),
          postgresql_where=text(OTHER_ACCEPTED)),
    # Without AUTOINCREMENT, SQLite hands a deleted newest id out again; quarantine replay
    # deletes and re-inserts, and the re-inserted row must land above the watermark.
    sqlite_autoincrement=True,
)

# Per implementer, day of receipt, outcome and reason: how many events. Serves /v1/me and the
# data-quality indicator, and keeps counting duplicates and rejections, which are not events.
outcome_counts = Table(
    "outcome_counts", metadata,
    Column("implementer_id", Integer, primary_key=True),
    Column("received_on", Date, primary_key=True),
    Column("outcome", String(12), primary_key=True),
    Column("reason", String(200), primary_key=True),
    Column("events", BigInteger, nullable=False),
)

# One token bucket per implementer, in the database so that it holds across workers and hosts.
rate_buckets = Table(
    "rate_buckets", metadata,
    Column("implementer_id", Integer, primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", Float, nullable=False),  # seconds since the epoch
)

# Written by the aggregator after each run, read by /metrics.
aggregation_runs = Table(
    "aggregation_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("duration_seconds", Float, nullable=False),
    Column("events_read", BigInteger, nullable=False),
    Column("days_recomputed", Integer, nullable=False),
    Column("watermark", BigInteger, nullable=False),
)

# The dashboard's log-in state, here rather than in worker memory: a lockout or a logout must
# hold whichever worker (or host) answers the next request.
dashboard_login_failures = Table(
    "dashboard_login_failures", metadata,
    Column("key", String(120), primary_key=True),  # "user:<name>" or "*" (all names)
    Column("failures", Integer, nullable=False),
    Column("window_start", Float, nullable=False),  # for the global counter
    Column("last_failure", Float, nullable=False),
    Column("locked_until", Float, nullable=False),
)

# Server-side sessions: the cookie carries a random id; its SHA-256 is kept here.
dashboard_sessions = Table(
    "dashboard_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("username", String(100), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)


# The review loop's audit trail (kpi.review): every decision on a review item, appended and
# never changed; an item's status is its latest row. Update, delete and truncate are refused by
# triggers (APPEND_ONLY_TRIGGERS), so that the trail holds even against a hand-written query.
review_decisions = Table(
    "review_decisions", metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("item_id", String(40), nullable=False),
    Column("kind", String(12), nullable=False),  # label | proposal | translation
    Column("decision", String(10), nullable=False),  # accept | reject | defer | reopen | ...
    Column("status", String(10), nullable=False),  # the item's status from this row on
    Column("decided_by", String(100), nullable=False),  # a reviewer, or "system"
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("reason", String(20)),
    Column("note", Text),
    Column("in_release", String(20)),
    Column("released_as", String(200)),
    # the item's key and the evidence the decision saw
    Column("concept_uri", String(200)),
    Column("concept_type", String(16)),
    Column("language", String(2), nullable=False),
    Column("label_norm", Text, nullable=False),
    Column("label", Text, nullable=False),
    Column("implementers", Integer, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON: countries, days seen, spellings, ...
    Index("ix_review_decisions_item", "item_id", "id"),
    # ids only grow, even on SQLite: the latest row of an item is its highest id
    sqlite_autoincrement=True,
)

# Columns added to a table after stores with that table existed: init_store adds them to an
# older store (ALTER TABLE ... ADD COLUMN, with the column's server default for the rows
# already there). Append here when a table gains a column; never remove an entry.
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("users", "role"),
    ("catalogue_versions", "languages"),
    ("catalogue_versions", "report"),
    ("concepts", "code"),
)

# Indexes of `events` that an earlier version created and a later one replaced: an older
# store loses them (init_store, which also creates the indexes it lacks).
REPLACED_INDEXES: tuple[str, ...] = ("ix_events_quarantined",)

# Foreign keys that an earlier version created and a later one dropped, as (table, referred
# table): init_store drops them from an older PostgreSQL store. SQLite cannot drop a constraint
# without rebuilding the table, and its check is one primary-key look-up per row: an older
# SQLite store keeps it.
DROPPED_FOREIGN_KEYS: tuple[tuple[str, str], ...] = (("events", "implementers"),)

_APPEND_ONLY_MESSAGE = "review_decisions is append-only"
APPEND_ONLY_TRIGGERS: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "create trigger if not exists review_decisions_no_update before update on "
        f"review_decisions begin select raise(abort, '{_APPEND_ONLY_MESSAGE}'); end",
        "create trigger if not exists review_decisions_no_delete before delete on "
        f"review_decisions begin select raise(abort, '{_APPEND_ONLY_MESSAGE}'); end",
    ),
    "postgresql": (
        "create or replace function review_decisions_append_only() returns trigger "
        "language plpgsql as $$ begin "
        f"raise exception '{_APPEND_ONLY_MESSAGE}'; end $$",
        "create trigger review_decisions_no_change before update or delete on "
        "review_decisions for each row execute function review_decisions_append_only()",
        "create trigger review_decisions_no_truncate before truncate on review_decisions "
        "for each statement execute function review_decisions_append_only()",
    ),
}
# How init_store tells the triggers are in place, with one cheap query.
_TRIGGERS_PRESENT = {
    "sqlite": "select count(*) from sqlite_master where type = 'trigger' "
              "and name in ('review_decisions_no_update', 'review_decisions_no_delete')",
    "postgresql": "select count(*) from pg_trigger where tgrelid = 'review_decisions'::regclass "
                  "and tgname in ('review_decisions_no_change', 'review_decisions_no_truncate')",
}


def make_engine(settings: Settings, **kwargs) -> Engine:
    """An engine for the ingest store, tuned for durability."""
    url = make_url(settings.database_url)
    timeout = float(settings["ingest.store_timeout_seconds"])
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": timeout, "check_same_thread": False}, **kwargs
        )
        _configure_sqlite(engine, timeout)
        return engine
    # A lock held too long (a stuck transaction, a maintenance job) turns into an error that
    # the collector answers with 503, instead of a request that hangs.
    connect_args = {"connect_timeout": max(1, int(timeout)),
                    "options": f"-c lock_timeout={int(timeout * 1000)}"}
    return create_engine(
        url, connect_args=connect_args, pool_pre_ping=True, pool_timeout=timeout, **kwargs
    )


def _configure_sqlite(engine: Engine, timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see "begin").
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("pragma journal_mode=wal")
        cur.execute("pragma synchronous=full")
        cur.execute(f"pragma busy_timeout={int(timeout * 1000)}")
        cur.execute("pragma foreign_keys=on")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the write lock up front: no deadlock when a read turns into a write.
        mode = "immediate" if conn.get_execution_options().get("write") else "deferred"
        conn.exec_driver_sql(f"begin {mode}")


def store_error(exc: BaseException) -> str:
    """The store's complaint in one line, without the SQL or its parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig)
    return text.splitlines()[0][:200] if text.strip() else type(orig).__name__


def init_store(engine: Engine) -> None:
    """Create every table that is missing, add the columns of ADDED_COLUMNS and the indexes
    of `events` that an older store lacks, drop its REPLACED_INDEXES and DROPPED_FOREIGN_KEYS,
    and make the audit trail append-only; safe to run twice."""
    metadata.create_all(engine)
    _add_missing_columns(engine)
    _add_missing_indexes(engine)
    _drop_foreign_keys(engine)
    _ensure_append_only(engine)


def _add_missing_columns(engine: Engine) -> None:
    """Bring an older store's tables up to this version's columns (see ADDED_COLUMNS)."""
    inspector = inspect(engine)
    present = {table: {c["name"] for c in inspector.get_columns(table)}
               for table in {t for t, _ in ADDED_COLUMNS}}
    for table, column in ADDED_COLUMNS:
        if column in present[table]:
            continue
        ddl = CreateColumn(metadata.tables[table].c[column]).compile(dialect=engine.dialect)
        try:
            with engine.begin() as conn:
                # names from the constant ADDED_COLUMNS and the table definitions above
                conn.exec_driver_sql(f"alter table {table} add column {ddl}")
        except SQLAlchemyError:
            # another process (a worker starting at the same time) may have added it first
            inspector = inspect(engine)
            if column not in {c["name"] for c in inspector.get_columns(table)}:
                raise


def _add_missing_indexes(engine: Engine) -> None:
    """Give an older store the indexes of `events` it lacks (created once: a few seconds per
    10 M events) and drop its REPLACED_INDEXES."""
    present = {index["name"] for index in inspect(engine).get_indexes("events")}
    for index in events.indexes:
        if index.name in present:
            continue
        try:
            index.create(engine)
        except SQLAlchemyError:
            # another process (a worker starting at the same time) may have created it first
            if index.name not in {i["name"] for i in inspect(engine).get_indexes("events")}:
                raise
    replaced = sorted(present & set(REPLACED_INDEXES))
    if replaced:
        with engine.begin() as conn:
            for name in replaced:
                # names from the constant REPLACED_INDEXES
                conn.exec_driver_sql(f"drop index if exists {name}")


def _drop_foreign_keys(engine: Engine) -> None:
    """Drop an older PostgreSQL store's DROPPED_FOREIGN_KEYS (see there for SQLite)."""
    if engine.dialect.name != "postgresql":
        return
    inspector = inspect(engine)
    quote = engine.dialect.identifier_preparer.quote
    for table, referred in DROPPED_FOREIGN_KEYS:
        for key in inspector.get_foreign_keys(table):
            if key["referred_table"] != referred or not key.get("name"):
                continue
            with engine.begin() as conn:
                # the table from the constant above, the name from the database's own catalogue
                conn.exec_driver_sql(
                    f"alter table {quote(table)} drop constraint if exists {quote(key['name'])}")


def _ensure_append_only(engine: Engine) -> None:
    """Create the triggers that refuse to change or delete audit rows, unless present."""
    dialect = engine.dialect.name
    statements = APPEND_ONLY_TRIGGERS.get(dialect)
    if statements is None:
        return
    expected = 2
    with engine.connect() as conn:
        if conn.exec_driver_sql(_TRIGGERS_PRESENT[dialect]).scalar_one() == expected:
            return
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    except SQLAlchemyError:
        with engine.connect() as conn:  # created meanwhile by another process?
            if conn.exec_driver_sql(_TRIGGERS_PRESENT[dialect]).scalar_one() != expected:
                raise
