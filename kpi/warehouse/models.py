"""The warehouse's SQL models: named `.sql` files under sql/, read by name.

    sql/<indicator>.sql       an indicator or a support query of the dashboard (one select)
    sql/macros/<name>.sql     a DuckDB macro the indicators share (filtered_rows, label_groups...)
    sql/rollups/<table>.sql   a daily rollup, computed for the days to republish
    sql/dimensions/<table>.sql  a dimension table, published whole
    sql/reader/<table>.sql    a table each reader makes from the published ones when it opens
    sql/private/<name>.sql    the aggregator's private database: its schema, its writers and
                              the macros and views they share

A model is named by its path without `.sql` ("most_used_concepts", "rollups/usage_daily").
Values are always bound as DuckDB `$named` parameters, never formatted into the SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from typing import Any

import duckdb
import pyarrow as pa

_SQL = resources.files("kpi.sql")
_DEFINES = re.compile(r"create\s+or\s+replace\s+(?:temp\s+)?(?:macro|view)\s+(\w+)", re.I)
# A statement ends with ";" at the end of a line (the files are ours: no ";" inside strings).
_STATEMENT_END = re.compile(r";[ \t]*(?:--[^\n]*)?$", re.M)


@cache
def sql(name: str) -> str:
    """The text of one model, e.g. sql("rollups/usage_daily")."""
    path = _SQL.joinpath(f"{name}.sql")
    if not re.fullmatch(r"[a-z_]+(/[a-z_]+)?", name) or not path.is_file():
        raise ValueError(f"no SQL model named {name!r}")
    return path.read_text(encoding="utf-8")


@cache
def names(folder: str) -> tuple[str, ...]:
    """The models of one folder of sql/, e.g. names("rollups") -> ("activity_daily", ...)."""
    return tuple(sorted(p.name[:-4] for p in _SQL.joinpath(folder).iterdir()
                        if p.name.endswith(".sql")))


@cache
def statements(name: str) -> tuple[str, ...]:
    """The statements of a model that holds several (each ends with ";" at a line's end)."""
    parts = _STATEMENT_END.split(sql(name))
    return tuple(p.strip() for p in parts if _code(p).strip())


def _code(text: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def run(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
        ) -> duckdb.DuckDBPyConnection:
    """Run every statement of a model, binding the `$named` parameters each one uses.

    Returns the connection, so a caller can fetch the last statement's result.
    """
    for statement in statements(name):
        used = parameters(statement)
        con.execute(statement, {k: v for k, v in (params or {}).items() if k in used})
    return con


def arrow(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
          ) -> pa.Table:
    """Run every statement of a model (see `run`) and return the last one's result as an
    Arrow table: columns, not a Python object per value."""
    *first, last = statements(name)
    for statement in first:
        used = parameters(statement)
        con.execute(statement, {k: v for k, v in (params or {}).items() if k in used})
    used = parameters(last)
    return con.sql(last, params={k: v for k, v in (params or {}).items() if k in used}
                   ).to_arrow_table()


@cache
def parameters(text: str) -> frozenset[str]:
    """The `$named` parameters that SQL text uses (comments excluded)."""
    return frozenset(re.findall(r"\$([a-z_]+)", _code(text)))


def install(con: duckdb.DuckDBPyConnection, folder: str) -> None:
    """Create the macros and views that the models of one folder define, each after the ones
    it uses (the folder's other models, such as writers, are left to `run`)."""
    defined = {n: found for n in names(folder)
               if (found := _DEFINES.findall(_code(sql(f"{folder}/{n}"))))}
    done: set[str] = set()

    def create(name: str, seen: tuple[str, ...] = ()) -> None:
        if name in done:
            return
        if name in seen:
            raise ValueError(f"SQL models in {folder}/ use each other in a circle: {seen}")
        body = _code(sql(f"{folder}/{name}"))
        for other, objects in defined.items():
            if other != name and any(re.search(rf"\b{o}\b", body) for o in objects):
                create(other, (*seen, name))
        run(con, f"{folder}/{name}")
        done.add(name)

    for name in defined:
        create(name)


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, **tables: Any) -> Iterator[None]:
    """Arrow tables (or data frames) visible to the models run in the block, under the names
    the models read them by."""
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            con.unregister(name)


@contextmanager
def one_thread(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run every statement of the block on one DuckDB thread (the setting is the database's:
    every cursor's statements too), and the default, every core, again after it: for work that
    other threads or processes keep the other cores busy with, where splitting each statement
    over two threads would cost more CPU (hash tables and sorts merged) for nothing."""
    con.execute("set threads = 1")
    try:
        yield
    finally:
        con.execute("reset threads")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One DuckDB transaction: committed when the block ends, rolled back if it raises."""
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()
