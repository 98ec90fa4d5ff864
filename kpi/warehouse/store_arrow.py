"""Selects on the ingest store answered as Arrow tables, without a Python object per row where
it counts.

The aggregator reads millions of events. Through the usual drivers every row becomes a Python
tuple first (about 2 CPU-s per million events, most of a refresh). The ADBC drivers
(adbc-driver-postgresql, adbc-driver-sqlite) turn PostgreSQL's binary COPY stream, or SQLite's
rows, into Arrow arrays in C and release the GIL meanwhile. See bench/RESULTS.md, "Reading the
ingest store", for the alternatives that were measured.

* PostgreSQL: ADBC in this process (`ArrowStore`), one connection per reader thread.
* SQLite: ADBC's driver carries its own copy of the SQLite library, and two copies of SQLite in
  one process break each other's POSIX locks on the same database file (closing a file in one
  drops the other's locks: https://sqlite.org/howtocorrupt.html, 2.2.1); the collector and the
  aggregator's own engine use Python's sqlite3. So a large SQLite backlog is read with ADBC in
  worker processes (`read_sqlite_events`, run by a spawned process pool: this module imports
  nothing heavier than pyarrow), and small reads here go through sqlite3, row by row.
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from kpi.catalogue.labels import gendered_forms, normalise_label
from kpi.processes import remove_abandoned, shared_memory

if TYPE_CHECKING:
    from sqlalchemy import Engine, Select

_QMARK = re.compile(r"\?")
# The SQLite driver infers each column's type from the rows of its first Arrow batch: with one
# batch per result, a column that is null in the first rows and text later is still typed
# from all of them (a result is one id range of the backlog).
_SQLITE_BATCH_ROWS = 1 << 30
_SQLITE_BUSY_MS = 30_000

# The event columns that are not text (see kpi.store.db.events).
EVENT_TYPES: dict[str, pa.DataType] = {
    "implementer_id": pa.int32(), "day": pa.date32(), "count": pa.int64()}


class ArrowStore:
    """One connection to the ingest store that answers selects as Arrow tables (ADBC on
    PostgreSQL, sqlite3 row by row on SQLite: see the module's docstring). One per thread;
    close it when done. `rows`: row by row through the engine's own driver on PostgreSQL too,
    for a few rows (opening an ADBC connection costs about 45 ms)."""

    def __init__(self, engine: Engine, rows: bool = False):
        self.engine = engine
        self.dialect = engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise RuntimeError(f"the aggregator reads SQLite or PostgreSQL, not {self.dialect}")
        self._adbc: Any = None
        self._raw: Any = None
        if self.dialect == "postgresql" and not rows:
            import adbc_driver_postgresql.dbapi

            self._adbc = adbc_driver_postgresql.dbapi.connect(libpq_uri(engine),
                                                              autocommit=True)

    def select(self, statement: Select, types: dict[str, pa.DataType] | None = None
               ) -> pa.Table:
        """Run one select and return its rows as an Arrow table whose columns have the given
        types (text for the columns not named)."""
        sql, params = compile_qmark(statement, self.engine.dialect)
        if self._adbc is not None:
            with self._adbc.cursor() as cursor:
                cursor.execute(dollar_parameters(sql), params if params else None)
                table = cursor.fetch_arrow_table()
        else:
            table = self._rows_select(sql, params)
        return typed(table, types or {})

    def _rows_select(self, sql: str, params: tuple[Any, ...]) -> pa.Table:
        if self._raw is None:
            self._raw = self.engine.raw_connection()
        cursor = self._raw.dbapi_connection.cursor()
        if self.dialect == "postgresql":  # psycopg's parameters are %s (and % is %%)
            sql = _QMARK.sub("%s", sql.replace("%", "%%"))
        try:
            cursor.execute(sql, params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        finally:
            cursor.close()
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return pa.table({n: _array(list(c)) for n, c in zip(names, columns, strict=True)})

    def close(self) -> None:
        if self._adbc is not None:
            self._adbc.close()
            self._adbc = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None


def compile_qmark(statement: Select, dialect: Any) -> tuple[str, tuple[Any, ...]]:
    """A statement's SQL for the store's dialect, with positional `?` parameters, and the
    parameters in order."""
    qmark = _QMARK_DIALECTS.get(type(dialect))
    if qmark is None:
        qmark = _QMARK_DIALECTS[type(dialect)] = type(dialect)(paramstyle="qmark")
    compiled = statement.compile(dialect=qmark, compile_kwargs={"render_postcompile": True})
    return compiled.string, tuple(compiled.params[n] for n in compiled.positiontup or ())


_QMARK_DIALECTS: dict[type, Any] = {}


def store_source(engine: Engine) -> tuple[str, str]:
    """What a worker process connects to: ("sqlite", path) or ("postgresql", libpq URI)."""
    if engine.dialect.name == "sqlite":
        return "sqlite", str(engine.url.database)
    return "postgresql", libpq_uri(engine)


def dollar_parameters(sql: str) -> str:
    """`?` parameters as PostgreSQL's $1, $2, ... (the SQL is ours: no `?` inside strings)."""
    numbers = iter(range(1, sql.count("?") + 1))
    return _QMARK.sub(lambda _: f"${next(numbers)}", sql)


def libpq_uri(engine: Engine) -> str:
    """The engine's PostgreSQL database as a libpq connection URI."""
    url = engine.url.set(drivername="postgresql")
    if "connect_timeout" not in url.query:
        url = url.update_query_dict({"connect_timeout": "30"})
    return url.render_as_string(hide_password=False)


def typed(table: pa.Table, types: dict[str, pa.DataType]) -> pa.Table:
    """Cast every column to its wanted type (text by default): the drivers give int64 for
    SQLite integers and for a column of nulls only, dates as text on SQLite."""
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        want = types.get(name, pa.string())
        if column.type == want:
            columns.append(column)
        elif column.null_count == len(column):  # (no rows, or only nulls: nothing to cast)
            columns.append(pa.nulls(len(column), want))
        else:
            columns.append(column.cast(want))
    return pa.table(columns, names=table.column_names)


def with_label_norm(table: pa.Table, cache: dict[str, str]) -> pa.Table:
    """The table with `label_norm`, normalise_label of `label` (null for null), computed once
    per distinct label; `cache` keeps the keys for later batches."""
    labels = table.column("label")
    distinct = pc.unique(labels)
    norms = []
    for label in distinct.to_pylist():
        norm = None
        if label is not None:
            norm = cache.get(label)
            if norm is None:
                norm = cache[label] = normalise_label(label)
        norms.append(norm)
    positions = pc.index_in(labels, value_set=distinct)
    return table.append_column("label_norm", pc.take(pa.array(norms, pa.string()), positions))


def _array(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # SQLite lets a column mix types: as text
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def with_label_keys(table: pa.Table) -> pa.Table:
    """A table of catalogue labels with `label_norm` and `form_norms` (normalise_label and
    gendered_forms of `label`)."""
    texts = table.column("label").to_pylist()
    # (nearly every label of a release is distinct: a cache would cost more than it saves)
    table = table.append_column(
        "label_norm", pa.array(list(map(normalise_label, texts)), pa.string()))
    return table.append_column("form_norms", pa.array(
        [gendered_forms(text) if "/" in text else None for text in texts],
        pa.list_(pa.string())))


# --------------------------------------------------------------------------------------------
# In worker processes (never in the aggregator's own process for SQLite: see above)

_worker: dict[str, Any] = {}


def worker_select(source: tuple[str, str], queries: tuple[tuple[str, tuple[Any, ...]], ...],
                  shape: str, folder: str) -> list[str]:
    """Run each (sql with `?` parameters, parameters) select with ADBC in a worker process:
    one Arrow table per query that found rows, written as an Arrow IPC file into `folder`;
    returns their paths (see read_result). `source` is ("sqlite", path) or ("postgresql",
    libpq URI). `shape` "events": typed as EVENT_TYPES, with `label_norm` when it has `label`;
    "labels": catalogue labels with_label_keys. The connection and the event label keys stay
    open for the worker's next call.

    Files rather than return values: pickled through the pool's pipe, a million events cost
    the two processes more CPU than reading them; an IPC file (in /dev/shm where there is one)
    is one copy, and the reader maps it without copying.
    """
    import adbc_driver_manager

    if _worker.get("source") != source:
        if "connection" in _worker:
            _worker["connection"].close()
        _worker.update(source=source, connection=_connect(*source), labels={})
    tables = []
    with _worker["connection"].cursor() as cursor:
        if source[0] == "sqlite":
            cursor.adbc_statement.set_options(
                **{"adbc.sqlite.query.batch_rows": str(_SQLITE_BATCH_ROWS)})
        for sql, params in queries:
            if source[0] == "postgresql":
                sql = dollar_parameters(sql)
            try:
                cursor.execute(sql, params)
                table = cursor.fetch_arrow_table()
            except adbc_driver_manager.Error as exc:
                if source[0] == "sqlite":
                    # a column mixing types, which SQLite's driver refuses: the caller reads
                    # the rows in its own process
                    raise MixedTypes(str(exc)) from None
                # (the driver's own exceptions do not survive the trip back to the caller)
                raise RuntimeError(f"reading the ingest store: {exc}") from None
            if not table.num_rows:
                continue
            if shape == "labels":
                table = with_label_keys(typed(table, {}))
            else:
                table = typed(table, EVENT_TYPES)
                if "label" in table.column_names:
                    table = with_label_norm(table, _worker["labels"])
            path = os.path.join(folder, f"{os.getpid()}-{next(_numbers)}.arrow")
            with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            tables.append(path)
    return tables


_numbers = itertools.count()


def read_result(paths: list[str]) -> list[pa.Table]:
    """The tables a worker wrote (worker_select), memory-mapped; the files are removed (the
    mapping keeps their data until the tables are gone)."""
    tables = []
    for path in paths:
        with pa.memory_map(path) as source:
            tables.append(pa.ipc.open_file(source).read_all())
        os.unlink(path)
    return tables


def result_folder() -> str:
    """A new folder for the files of worker_select: in shared memory when the host has it.

    Its name holds this process's id: the folders of a process that was killed before it
    removed its own (in memory, on /dev/shm) are removed here.
    """
    parent = shared_memory() or Path(tempfile.gettempdir())
    remove_abandoned(parent, _FOLDER_PREFIX)
    return tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-", dir=parent)


_FOLDER_PREFIX = "esco-kpi-read-"


def _connect(kind: str, target: str) -> Any:
    if kind == "postgresql":
        import adbc_driver_postgresql.dbapi

        return adbc_driver_postgresql.dbapi.connect(target, autocommit=True)
    import adbc_driver_sqlite.dbapi

    connection = adbc_driver_sqlite.dbapi.connect(target, autocommit=True)
    with connection.cursor() as cursor:
        # a reader of a WAL database waits only in rare moments (recovery after a crash)
        cursor.execute(f"pragma busy_timeout = {_SQLITE_BUSY_MS}")
        cursor.fetchall()
    return connection


class MixedTypes(RuntimeError):
    """A SQLite column held values of several types in one result."""
