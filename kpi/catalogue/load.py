"""Loading ESCO releases into the ingest store, one version each; adding languages to a
release; removing one; and reading back which releases are loaded.

A release's files are read by kpi.catalogue.files; here its concepts, labels, codes,
collections and replaced URIs are written to the store's catalogue tables in one transaction.
A load of a version already loaded adds to it (the languages of another download of the same
release) when its concepts agree with the release; `replace` replaces it as a whole. Each load
leaves a report (catalogue_versions.report, JSON):

    {"concepts": {"occupation": 3039, ...}, "languages": ["bg", ...], "modified": "2024-04-30",
     "collections": {"green": 591, ...}, "successors": 416,
     "loads": [{"when": "...", "mode": "new" | "added" | "replaced", "source": "...",
                "paths": [...], "languages": [...], "added_languages": [...],
                "labels_added": 0, "modified": "2024-04-30" | null,
                "files": [{"path", "from", "format", "kind", "language", "rows", "version",
                           "modified"}],
                "ignored": [{"path", "from", "reason"}], "warnings": [...], "notes": [...]}]}
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from kpi.catalogue.files import (
    KIND_ORDER,
    CatalogueError,
    Progress,
    Release,
    first_difference,
    read_release,
)
from kpi.catalogue.successors import code_successors
from kpi.catalogue.versions import is_version, version_key
from kpi.store.db import (
    catalogue_versions,
    concept_collections,
    concept_labels,
    concept_successors,
    concepts,
    events,
)

BUNDLED_VERSION = "1.2.0"

_CHUNK = 5000
_SOURCE_MAX = 500  # catalogue_versions.source is String(500)
# The tables holding a release's rows, children first.
_RELEASE_TABLES = (concept_labels, concept_collections, concept_successors, concepts,
                   catalogue_versions)


@dataclass(frozen=True)
class LoadSummary:
    """What one load put into the store, and the release after it."""

    version: str
    concepts: int  # the release's, after the load
    labels: int
    languages: tuple[str, ...]
    files: int  # files read by this load
    seconds: float
    mode: str = "new"  # new | added | replaced
    by_type: dict[str, int] = field(default_factory=dict)
    added_languages: tuple[str, ...] = ()
    labels_added: int = 0
    collections: dict[str, int] = field(default_factory=dict)
    successors: int = 0
    report: dict[str, Any] = field(default_factory=dict)  # this load's entry (see above)


@dataclass(frozen=True)
class RemoveSummary:
    """What `remove_release` took away."""

    version: str
    concepts: int
    labels: int
    requarantined: int  # accepted events whose concept no remaining release knows


def _check_version(version: str) -> None:
    if not is_version(version):
        raise CatalogueError(
            f"version {version!r} is not a version number like 1.2.0 (digits and dots)"
        )


def _insert_chunks(
    conn: Any, table: Any, rows: list[tuple], step: str, progress: Progress | None
) -> None:
    """Insert rows (tuples in the table's column order) in chunks, reporting progress."""
    total = len(rows)
    names = [c.name for c in table.columns]
    if conn.dialect.name == "sqlite":
        # The driver's executemany with plain tuples: several times faster than going through
        # SQLAlchemy's per-row dict processing, which matters for ~400k labels.
        marks = ", ".join("?" * len(names))
        sql = f"insert into {table.name} ({', '.join(names)}) values ({marks})"
    if progress:
        progress(step, 0, total)
    for start in range(0, total, _CHUNK):
        chunk = rows[start:start + _CHUNK]
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(sql, chunk)
        else:
            # COPY in the same transaction: rows streamed to the server in one statement,
            # about four times faster than multi-row inserts for a release's labels
            with conn.connection.cursor() as cursor, cursor.copy(
                    f"copy {table.name} ({', '.join(names)}) from stdin") as copy:
                for row in chunk:
                    copy.write_row(row)
        if progress:
            progress(step, min(start + _CHUNK, total), total)


def _parse_report(text: str | None) -> dict[str, Any]:
    """A stored report; {} for a release loaded before reports were kept."""
    try:
        report = json.loads(text) if text else {}
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}


def _paths_text(paths: Sequence[Path]) -> str:
    return ", ".join(str(p.resolve()) for p in paths)


def load_catalogue(
    engine: Engine,
    path: Path | Sequence[Path],
    version: str,
    progress: Progress | None = None,
    source: str | None = None,
    *,
    replace: bool = False,
) -> LoadSummary:
    """Load an ESCO release (folders or .zip files of ESCO CSV files) as `version`, in one
    transaction.

    A version already loaded gets the new files' labels, collection members and concept kinds
    it lacks, provided their concepts agree with it (first_difference); with `replace` the
    release is replaced as a whole. `progress(step, done, total)` is called with step
    "reading files" (done = files read), then "inserting concepts" and "inserting labels"
    (done = rows inserted). Raises CatalogueError for any unusable input or disagreeing
    concepts; nothing is stored then.
    """
    started = time.perf_counter()
    _check_version(version)
    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    release = read_release(paths, version, progress)
    when = datetime.now(UTC)
    entry: dict[str, Any] = {
        "when": when.isoformat(timespec="seconds"), "mode": "new",
        "source": source or _paths_text(paths), "paths": [str(p.resolve()) for p in paths],
        "languages": list(release.languages), "added_languages": [], "labels_added": 0,
        "modified": release.modified, "files": release.read, "ignored": release.ignored,
        "warnings": list(release.warnings), "notes": list(release.notes),
    }

    with engine.connect().execution_options(write=True) as conn, conn.begin():
        row = conn.execute(select(catalogue_versions).where(
            catalogue_versions.c.version == version).with_for_update()).first()
        if row is not None and replace:
            _delete_release(conn, version)
            entry["mode"] = "replaced"
        if row is None or replace:
            report: dict[str, Any] = {"loads": []}
            labels_before = 0
            # The release's row first: a second load of the same version waits for this one.
            conn.execute(catalogue_versions.insert(), {
                "version": version, "loaded_at": when, "source": entry["source"][:_SOURCE_MAX],
                "concepts": 0, "labels": 0, "languages": "", "report": None,
            })
            _insert_new(conn, version, release, progress)
            entry["added_languages"] = list(release.languages)
        else:
            entry["mode"] = "added"
            report = _parse_report(row.report)
            labels_before = row.labels
            stored_languages = _stored_languages(conn, version)
            _add_to(conn, version, release, paths, progress)
            entry["added_languages"] = [lang for lang in release.languages
                                        if lang not in stored_languages]

        by_type = _by_type(conn, version)
        languages = _stored_languages(conn, version)
        n_concepts = sum(by_type.values())
        n_labels = _count(conn, concept_labels, version)
        entry["labels_added"] = n_labels - labels_before
        entry["warnings"] += _store_warnings(conn, version, release.modified, by_type)
        report.setdefault("loads", []).append(entry)
        collections = _collection_counts(conn, version)
        successors = _count(conn, concept_successors, version)
        dates = [d for d in (load.get("modified") for load in report["loads"]) if d]
        report.update(concepts=by_type, languages=languages, collections=collections,
                      successors=successors, modified=max(dates) if dates else None)
        sources = [load.get("source", "") for load in report["loads"]]
        source_text = " + ".join(s for s in sources if s)
        if len(source_text) > _SOURCE_MAX:
            source_text = source_text[: _SOURCE_MAX - 1] + "…"
        conn.execute(update(catalogue_versions).where(
            catalogue_versions.c.version == version).values(
            loaded_at=when, source=source_text, concepts=n_concepts, labels=n_labels,
            languages=",".join(languages), report=json.dumps(report, ensure_ascii=False)))
    return LoadSummary(
        version=version, concepts=n_concepts, labels=n_labels, languages=tuple(languages),
        files=release.files, seconds=time.perf_counter() - started, mode=entry["mode"],
        by_type=by_type, added_languages=tuple(entry["added_languages"]),
        labels_added=entry["labels_added"], collections=collections, successors=successors,
        report=entry,
    )


def _insert_new(conn: Any, version: str, release: Release, progress: Progress | None) -> None:
    """A release's rows into empty tables."""
    concept_rows = [(version, uri, kind, status, release.codes.get(uri))
                    for uri, (kind, status) in release.concepts.items()]
    _insert_chunks(conn, concepts, concept_rows, "inserting concepts", progress)
    _insert_chunks(conn, concept_collections, [
        (version, name, uri) for name, members in sorted(release.collections.items())
        for uri in sorted(members)], "inserting collections", None)
    _insert_chunks(conn, concept_successors, [
        (version, old, new, "code")
        for old, new in code_successors(release.codes, release.concepts).items()],
        "inserting successors", None)
    _insert_chunks(conn, concept_labels, [(version, *label) for label in release.labels],
                   "inserting labels", progress)


def _add_to(conn: Any, version: str, release: Release, paths: Sequence[Path],
            progress: Progress | None) -> None:
    """Another download of a loaded release: refused unless its concepts agree; then the
    kinds the release lacks, codes, collection members and labels are added."""
    stored = {uri: (kind, status, code) for uri, kind, status, code in conn.execute(
        select(concepts.c.uri, concepts.c.concept_type, concepts.c.status, concepts.c.code)
        .where(concepts.c.version == version))}
    names = ", ".join(str(p) for p in paths)
    found = first_difference(stored, release.concepts, release.kinds,
                             f"release {version} as loaded", names)
    if found:
        first, count = found
        raise CatalogueError(
            f"{names}: its concepts disagree with release {version} as loaded: {first} "
            f"({count} difference{'s' if count > 1 else ''}); nothing was stored "
            f"(--replace replaces the release as a whole)"
        )
    new_rows = [(version, uri, kind, status, release.codes.get(uri))
                for uri, (kind, status) in release.concepts.items() if uri not in stored]
    _insert_chunks(conn, concepts, new_rows, "inserting concepts", progress)
    coded = [{"v": version, "u": uri, "c": release.codes[uri]}
             for uri, (_, _, code) in stored.items() if code is None and uri in release.codes]
    if coded:
        conn.execute(update(concepts).where(
            concepts.c.version == bindparam("v"), concepts.c.uri == bindparam("u"))
            .values(code=bindparam("c")), coded)

    members = {(name, uri) for name, uri in conn.execute(
        select(concept_collections.c.collection, concept_collections.c.uri)
        .where(concept_collections.c.version == version))}
    _insert_chunks(conn, concept_collections, [
        (version, name, uri) for name, uris in sorted(release.collections.items())
        for uri in sorted(uris) if (name, uri) not in members], "inserting collections", None)

    codes = {uri: code for uri, (_, _, code) in stored.items() if code}
    for uri, code in release.codes.items():
        codes.setdefault(uri, code)
    conn.execute(delete(concept_successors).where(concept_successors.c.version == version))
    _insert_chunks(conn, concept_successors, [
        (version, old, new, "code")
        for old, new in code_successors(codes, set(stored) | set(release.concepts)).items()],
        "inserting successors", None)

    _insert_chunks(conn, concept_labels, _merged_labels(conn, version, release),
                   "inserting labels", progress)


def _merged_labels(conn: Any, version: str, release: Release) -> list[tuple]:
    """The label rows to insert for a download added to a loaded release.

    A language the release has is rewritten whole (its rows are deleted here): the new
    download's preferred label of a concept replaces the stored one (it is a download of this
    very version, named by whoever loads it), and alternative and hidden labels are the union.
    """
    by_language: dict[str, list[tuple[str, str, str, str]]] = {}
    for label in release.labels:
        by_language.setdefault(label[1], []).append(label)
    stored_languages = set(_stored_languages(conn, version))
    rows: list[tuple] = []
    for language, new in sorted(by_language.items()):
        merged = dict.fromkeys(new)
        if language in stored_languages:
            renamed = {uri for uri, _, kind, _ in new if kind == "preferred"}
            for uri, kind, label in conn.execute(
                    select(concept_labels.c.uri, concept_labels.c.kind, concept_labels.c.label)
                    .where(concept_labels.c.version == version,
                           concept_labels.c.language == language)):
                if not (kind == "preferred" and uri in renamed):
                    merged.setdefault((uri, language, kind, label))
            conn.execute(delete(concept_labels).where(concept_labels.c.version == version,
                                                      concept_labels.c.language == language))
        rows.extend((version, *label) for label in merged)
    return rows


def _delete_release(conn: Any, version: str) -> None:
    for table in _RELEASE_TABLES:
        conn.execute(delete(table).where(table.c.version == version))


def _count(conn: Any, table: Any, version: str) -> int:
    return conn.execute(select(func.count()).select_from(table)
                        .where(table.c.version == version)).scalar_one()


def _by_type(conn: Any, version: str) -> dict[str, int]:
    """Concepts per type, in ESCO's order (occupations, ISCO groups, skills, skill groups)."""
    counts = dict(conn.execute(select(concepts.c.concept_type, func.count())
                               .where(concepts.c.version == version)
                               .group_by(concepts.c.concept_type)).all())
    order = {kind: i for i, kind in enumerate(KIND_ORDER)}
    return {kind: counts[kind] for kind in sorted(counts, key=lambda k: (order.get(k, 9), k))}


def _stored_languages(conn: Any, version: str) -> list[str]:
    return sorted(conn.execute(select(concept_labels.c.language).distinct()
                               .where(concept_labels.c.version == version)).scalars())


def _collection_counts(conn: Any, version: str) -> dict[str, int]:
    return dict(sorted(conn.execute(
        select(concept_collections.c.collection, func.count())
        .where(concept_collections.c.version == version)
        .group_by(concept_collections.c.collection)).all()))


def _store_warnings(conn: Any, version: str, modified: str | None,
                    by_type: dict[str, int]) -> list[str]:
    """What looks wrong once the release is in the store: no skills; a version number that
    its files' newest modifiedDate contradicts, judged against the other loaded releases."""
    warnings = []
    if not by_type.get("skill"):
        warnings.append(f"no skills file (skills_<language>.csv): release {version} has no "
                        f"skills")
    if modified is None:
        return warnings
    key = version_key(version)
    others = conn.execute(select(catalogue_versions.c.version, catalogue_versions.c.report)
                          .where(catalogue_versions.c.version != version)).all()
    for other, text in sorted(others, key=lambda r: version_key(r[0])):
        theirs = _parse_report(text).get("modified")
        if not theirs:
            continue
        if modified == theirs:
            warnings.append(f"the files' newest modifiedDate ({modified}) is that of release "
                            f"{other}: the same release loaded again as {version}?")
        elif version_key(other) > key and modified > theirs:
            warnings.append(f"the files' newest modifiedDate ({modified}) is after that of the "
                            f"newer release {other} ({theirs}): is {version} the right version?")
        elif version_key(other) < key and modified < theirs:
            warnings.append(f"the files' newest modifiedDate ({modified}) is before that of the "
                            f"older release {other} ({theirs}): is {version} the right version?")
    return warnings


def bundled_path() -> Path:
    """The folder of the ESCO catalogue shipped with the package."""
    folder = resources.files("kpi") / "data" / "esco"
    # Installed from a wheel or a checkout, the package is a plain folder on disk.
    return Path(str(folder))


def load_bundled(engine: Engine, progress: Progress | None = None) -> LoadSummary | None:
    """Load the bundled ESCO v1.2.0 catalogue unless it is loaded already (then None)."""
    if BUNDLED_VERSION in versions(engine):
        return None
    try:
        return load_catalogue(
            engine, bundled_path(), BUNDLED_VERSION, progress,
            source=f"bundled ESCO v{BUNDLED_VERSION} (kpi/data/esco)",
        )
    except (CatalogueError, SQLAlchemyError):
        # Another process (a second `init`) may have loaded it meanwhile: that is success.
        if BUNDLED_VERSION in versions(engine):
            return None
        raise


# ---------------------------------------------------------------------------------------------
# Removing a release


def remove_release(engine: Engine, version: str) -> RemoveSummary:
    """Remove a release's rows, in one transaction; accepted events whose concept no remaining
    release knows (as a concept, or as a URI one of them replaced) go back to quarantine
    (reason unknown_concept), in the same transaction. Raises CatalogueError for a version
    that is not loaded."""
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        row = conn.execute(select(catalogue_versions).where(
            catalogue_versions.c.version == version).with_for_update()).first()
        if row is None:
            loaded = sorted(conn.execute(select(catalogue_versions.c.version)).scalars(),
                            key=version_key)
            held = f"loaded: {', '.join(loaded)}" if loaded else "no release is loaded"
            raise CatalogueError(f"version {version} is not loaded ({held})")
        own = set(conn.execute(select(concepts.c.uri).where(concepts.c.version == version))
                  .scalars())
        own |= set(conn.execute(select(concept_successors.c.uri)
                                .where(concept_successors.c.version == version)).scalars())
        n_labels = _count(conn, concept_labels, version)
        n_concepts = _count(conn, concepts, version)
        _delete_release(conn, version)
        # Only the removed release's URIs can have lost their last release.
        still = set(conn.execute(select(concepts.c.uri).distinct()).scalars())
        still |= set(conn.execute(select(concept_successors.c.uri)).scalars())
        orphans = sorted(own - still)
        requarantined = 0
        for start in range(0, len(orphans), _CHUNK):
            result = conn.execute(
                update(events).where(events.c.status == "accepted",
                                     events.c.concept_uri.in_(orphans[start:start + _CHUNK]))
                .values(status="quarantined", quarantine_reason="unknown_concept"))
            requarantined += result.rowcount
    return RemoveSummary(version, n_concepts, n_labels, requarantined)


# ---------------------------------------------------------------------------------------------
# Which versions are loaded


def versions(engine: Engine) -> list[str]:
    """Every loaded version, oldest to newest."""
    with engine.connect() as conn:
        found = conn.execute(select(catalogue_versions.c.version)).scalars().all()
    return sorted(found, key=version_key)


def current_version(engine: Engine) -> str | None:
    """The newest loaded version, or None when no catalogue is loaded."""
    loaded = versions(engine)
    return loaded[-1] if loaded else None


def releases(engine: Engine) -> list[dict[str, Any]]:
    """Every loaded release, oldest to newest: its concepts by type, languages, collections,
    when and from what it was loaded, whether it is the current one (the newest version
    number), and its report (see the module's docstring; {} for one loaded before reports
    were kept)."""
    with engine.connect() as conn:
        rows = conn.execute(select(catalogue_versions)).all()
        found = []
        for row in sorted(rows, key=lambda r: version_key(r.version)):
            report = _parse_report(row.report)
            languages = row.languages.split(",") if row.languages else _stored_languages(
                conn, row.version)
            loads = [{k: load.get(k) for k in ("when", "mode", "source", "added_languages")}
                     for load in report.get("loads", [])]
            found.append({
                "version": row.version, "current": False,
                "loaded_at": row.loaded_at.isoformat(timespec="seconds"),
                "source": row.source, "concepts": row.concepts, "labels": row.labels,
                "concepts_by_type": _by_type(conn, row.version), "languages": languages,
                "collections": _collection_counts(conn, row.version),
                "successors": _count(conn, concept_successors, row.version),
                "modified": report.get("modified"), "loads": loads, "report": report,
            })
    if found:
        found[-1]["current"] = True
    return found


def catalogue_token(engine: Engine) -> tuple[tuple[str, str], ...]:
    """Changes whenever a version is loaded, replaced or removed: one small query."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(catalogue_versions.c.version, catalogue_versions.c.loaded_at)
        ).all()
    return tuple(sorted((v, str(at)) for v, at in rows))
