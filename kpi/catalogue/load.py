"""The ESCO catalogue: every loaded ESCO version's concepts and labels, in the ingest store.

A version is loaded from a folder (or a .zip file) in ESCO's own CSV download format:

* full files `occupations_<lang>.csv`, `skills_<lang>.csv`, `ISCOGroups_<lang>.csv`,
  `skillGroups_<lang>.csv`, optionally gzipped (`.csv.gz`) and optionally with a suffix after
  the language (`_v1.0.8`, `_api-2026-08`, `_collections_v1.2.0`); columns conceptUri and
  preferredLabel, optionally altLabels, hiddenLabels, status, one value per line in
  multi-valued cells;
* wide tables `<kind>_preferredLabel_<anything>.csv[.gz]` with a conceptUri column and one
  column of preferred labels per language (the bundled 26-language and fi/sv tables);
* ESCO's collection files `<name>Collection_<lang>.csv[.gz]`, whose multi-valued cells are
  separated by " | " (labels only).

Every other file of a download (relations, hierarchy, concept schemes) is ignored.
The concepts of a version are the URIs of its English full files (or, for a kind without an
English file, of its full files in the other languages); the other files only add labels to
those concepts. Where several files give a preferred label for the same concept and language,
the file of the newest ESCO version wins (a version suffix in the name tells it; a file without
one is taken to be of the version being loaded), and alternative and hidden labels are the
union of all files, because a label that ESCO published for a concept is not a "new" label.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import sys
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib import resources
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, delete, func, select

from kpi.store.db import catalogue_versions, concept_labels, concepts

LANGUAGES: tuple[str, ...] = (
    "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr", "hu", "is",
    "it", "lt", "lv", "mt", "nl", "no", "pl", "pt", "ro", "sk", "sl", "sv", "uk", "ar",
)
BUNDLED_VERSION = "1.2.0"

Progress = Callable[[str, int, int], None]

_VERSION_RE = re.compile(r"^\d+(\.\d+){1,2}$")
_LANG_ALT = "|".join(LANGUAGES)
_KINDS = {
    "occupations": "occupation",
    "skills": "skill",
    "ISCOGroups": "isco",
    "skillGroups": "skill_group",
}
# When a URI turns up under two kinds, the first kind in this order keeps it.
_KIND_ORDER = ("occupation", "isco", "skill", "skill_group")
_FULL_RE = re.compile(
    rf"^(?P<kind>occupations|skills|ISCOGroups|skillGroups)_(?P<lang>{_LANG_ALT})"
    r"(?P<suffix>_[A-Za-z0-9._-]+)?\.csv(?P<gz>\.gz)?$"
)
_WIDE_RE = re.compile(
    r"^(?P<kind>occupations|skills|ISCOGroups|skillGroups)_preferredLabel_"
    r"(?P<suffix>[A-Za-z0-9._-]+)\.csv(?P<gz>\.gz)?$"
)
_COLLECTION_RE = re.compile(
    rf"^(?P<name>[A-Za-z]+Collection)_(?P<lang>{_LANG_ALT})"
    r"(?P<suffix>_[A-Za-z0-9._-]+)?\.csv(?P<gz>\.gz)?$"
)
_FILE_VERSION_RE = re.compile(r"_v(\d+(?:\.\d+)*)")
_URI_RE = re.compile(r"^http://\S+$")
_URI_MAX = 200  # concepts.uri is String(200)
_CHUNK = 5000

# ESCO descriptions can be long; the csv module's default field limit (128 KiB) is too tight
# for some third-party exports.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class CatalogueError(Exception):
    """A catalogue that cannot be loaded; the message names the file (and line)."""


@dataclass(frozen=True)
class LoadSummary:
    """What one load put into the store."""

    version: str
    concepts: int
    labels: int
    languages: tuple[str, ...]
    files: int
    seconds: float


@dataclass(frozen=True)
class _Source:
    """One recognised CSV file of a catalogue folder or zip."""

    name: str        # file name, for messages and ordering
    display: str     # path shown in messages
    fmt: str         # full | wide | collection
    kind: str | None  # concept type; None for collection files (labels only)
    language: str | None  # None for wide tables (one column per language)
    file_version: tuple[int, ...] | None  # from a `_v1.0.8` suffix
    suffixed: bool
    opener: Callable[[], IO[bytes]]


def version_key(v: str) -> tuple[int, ...]:
    """`"1.10.2"` -> `(1, 10, 2)`, for sorting versions numerically."""
    return tuple(int(part) for part in v.split("."))


def _check_version(version: str) -> None:
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise CatalogueError(
            f"version {version!r} is not a version number like 1.2.0 (digits and dots)"
        )


def normalise_label(text: str) -> str:
    """The contract's label normalisation, used to compare and group free-text labels.

    Unicode NFKD, combining marks removed, case-folded, every character that is not a letter
    or digit replaced by a space, runs of spaces collapsed, trimmed.
    """
    # Case-folding can itself produce decomposable characters, hence NFKD on both sides.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    chars = [
        ch if ch.isalnum() else " "
        for ch in folded
        if not unicodedata.category(ch).startswith("M")
    ]
    return " ".join("".join(chars).split())


# ---------------------------------------------------------------------------------------------
# Finding the files


def _classify(name: str) -> tuple[str, str | None, str | None, str] | None:
    """(fmt, kind, language, suffix) for a recognised file name, else None."""
    m = _WIDE_RE.match(name)
    if m:
        return "wide", _KINDS[m["kind"]], None, m["suffix"]
    m = _FULL_RE.match(name)
    if m:
        return "full", _KINDS[m["kind"]], m["lang"], m["suffix"] or ""
    m = _COLLECTION_RE.match(name)
    if m:
        return "collection", None, m["lang"], m["suffix"] or ""
    return None


def _make_source(name: str, display: str, opener: Callable[[], IO[bytes]]) -> _Source | None:
    found = _classify(name)
    if found is None:
        return None
    fmt, kind, language, suffix = found
    m = _FILE_VERSION_RE.search(suffix)
    return _Source(
        name=name, display=display, fmt=fmt, kind=kind, language=language,
        file_version=version_key(m[1]) if m else None, suffixed=bool(suffix), opener=opener,
    )


def _find_sources(path: Path) -> list[_Source]:
    if not path.exists():
        raise CatalogueError(f"{path}: no such file or folder")
    sources: list[_Source] = []
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            source = _make_source(file.name, str(file), partial(file.open, "rb"))
            if source:
                sources.append(source)
    elif zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                members = [i.filename for i in zf.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError) as exc:
            raise CatalogueError(f"{path}: not a readable zip file ({exc})") from None

        def opener(member: str) -> Callable[[], IO[bytes]]:
            def open_member() -> IO[bytes]:
                zf = zipfile.ZipFile(path)
                # Read the member whole: the zip stays closed and entries are a few MB.
                try:
                    return io.BytesIO(zf.read(member))
                finally:
                    zf.close()
            return open_member

        for member in sorted(members):
            name = member.rsplit("/", 1)[-1]
            source = _make_source(name, f"{path}:{member}", opener(member))
            if source:
                sources.append(source)
    else:
        raise CatalogueError(f"{path}: expected a folder or a .zip file of ESCO CSV files")
    if not any(s.fmt == "full" for s in sources):
        raise CatalogueError(
            f"{path}: no ESCO catalogue files found (expected files such as occupations_en.csv, "
            "skills_en.csv, ISCOGroups_en.csv, skillGroups_en.csv, optionally .csv.gz)"
        )
    return sources


# ---------------------------------------------------------------------------------------------
# Reading one file


def _open_bytes(source: _Source, stack: ExitStack) -> IO[bytes]:
    stream: IO[bytes] = stack.enter_context(source.opener())
    if source.name.endswith(".gz"):
        stream = stack.enter_context(gzip.GzipFile(fileobj=stream))
    return stream


def _first_bad_line(source: _Source) -> int | None:
    """The physical line holding the first byte that is not UTF-8 (for the error message)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with ExitStack() as stack:
        for number, line in enumerate(_open_bytes(source, stack), start=1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError:
                return number
    return None


def _open_text(source: _Source, stack: ExitStack) -> IO[str]:
    stream = _open_bytes(source, stack)
    # utf-8-sig: some spreadsheet tools save ESCO files with a byte-order mark.
    return stack.enter_context(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))


def _read(source: _Source) -> _FileData:
    """Parse one file; every problem with it becomes a CatalogueError naming it."""
    reader: Any = None
    where = source.display
    try:
        with ExitStack() as stack:
            reader = csv.reader(_open_text(source, stack), strict=True)
            return _parse(source, reader)
    except UnicodeDecodeError:
        # The text layer decodes ahead in blocks, so find the line in a second, byte-wise pass.
        line = _first_bad_line(source)
        at = f", line {line}" if line else ""
        raise CatalogueError(f"{where}{at}: is not UTF-8 text") from None
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 1
        raise CatalogueError(f"{where}, line {line}: malformed CSV ({exc})") from None
    except (gzip.BadGzipFile, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise CatalogueError(f"{where}: not a valid compressed file ({exc})") from None
    except OSError as exc:
        raise CatalogueError(f"{where}: cannot be read ({exc})") from None


def _data_rows(reader: Any, width: int, where: str) -> Iterator[tuple[int, list[str]]]:
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != width:
            raise CatalogueError(
                f"{where}, line {reader.line_num}: malformed row: expected {width} fields "
                f"as in the header, found {len(row)}"
            )
        yield reader.line_num, row


def _split(cell: str | None, bars: bool) -> list[str]:
    """The values of a multi-valued cell: one per line, or " | "-separated in collections."""
    if not cell:
        return []
    parts = cell.splitlines()
    if bars:
        parts = [p for part in parts for p in part.split(" | ")]
    return [p.strip() for p in parts if p.strip()]


def _norm_uri(uri: str) -> str:
    # The same normalisation the collector applies to event URIs: https and a trailing slash.
    uri = uri.strip()
    if uri.startswith("https://"):
        uri = "http://" + uri[len("https://"):]
    return uri.rstrip("/")


def _check_uri(uri: str, where: str, line: int) -> str:
    uri = _norm_uri(uri)
    if not uri:
        raise CatalogueError(f"{where}, line {line}: malformed row: empty conceptUri")
    if not _URI_RE.fullmatch(uri) or len(uri) > _URI_MAX:
        raise CatalogueError(f"{where}, line {line}: malformed row: bad conceptUri {uri[:80]!r}")
    return uri


@dataclass
class _FileData:
    """What one file says: concepts (full files) and labels."""

    source: _Source
    concepts: dict[str, tuple[str, str]]  # uri -> (concept type, status)
    preferred: list[tuple[str, str, str]]  # (uri, language, label)
    others: list[tuple[str, str, str, str]]  # (uri, language, kind, label)
    skipped: bool = False  # not a label file after all


def _parse(source: _Source, reader: Any) -> _FileData:
    data = _FileData(source, {}, [], [])
    where = source.display
    header = next(reader, None)
    if header is None:
        raise CatalogueError(f"{where}: the file is empty (no header row)")
    header = [h.strip() for h in header]
    col = {name: i for i, name in reversed(list(enumerate(header)))}
    rows = _data_rows(reader, len(header), where)
    if (
        source.suffixed and source.file_version is None and "preferredLabel" not in col
        and not any(lang in col for lang in LANGUAGES)
    ):
        # A side file such as skills_en_attr_sources.csv: named like a label file but holding
        # no labels. A file named exactly like ESCO's own must have the columns, though.
        data.skipped = True
        return data
    if "conceptUri" not in col:
        raise CatalogueError(f"{where}: no conceptUri column (found: {', '.join(header)[:200]})")
    i_uri = col["conceptUri"]
    if source.fmt == "wide":
        langs = [(lang, col[lang]) for lang in LANGUAGES if lang in col]
        if not langs:
            raise CatalogueError(f"{where}: no language columns ({', '.join(LANGUAGES)})")
        for line, row in rows:
            uri = _check_uri(row[i_uri], where, line)
            for lang, i in langs:
                label = row[i].strip()
                if label:
                    data.preferred.append((uri, lang, label))
        return data
    if "preferredLabel" not in col:
        raise CatalogueError(
            f"{where}: no preferredLabel column (found: {', '.join(header)[:200]})"
        )
    lang = source.language
    assert lang is not None
    i_pref = col["preferredLabel"]
    i_status = col.get("status")
    multi = [(col[c], kind) for c, kind in (("altLabels", "alt"), ("hiddenLabels", "hidden"))
             if c in col]
    bars = source.fmt == "collection"
    for line, row in rows:
        uri = _check_uri(row[i_uri], where, line)
        if source.fmt == "full":
            assert source.kind is not None
            status = (row[i_status].strip() if i_status is not None else "") or "released"
            data.concepts.setdefault(uri, (source.kind, status[:20]))
        label = row[i_pref].strip()
        if label:
            data.preferred.append((uri, lang, label))
        for i, kind in multi:
            for value in _split(row[i], bars):
                data.others.append((uri, lang, kind, value))
    return data


# ---------------------------------------------------------------------------------------------
# Loading


def _rank(source: _Source, load_version: tuple[int, ...]) -> tuple[Any, ...]:
    """Higher is better: which file's preferred label wins for a concept and language."""
    version = source.file_version or load_version
    # A file claiming a newer version than the one being loaded is still of that load.
    version = min(version, load_version)
    fmt = {"full": 2, "wide": 1, "collection": 0}[source.fmt]
    return (version, not source.suffixed, fmt, source.name)


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
            conn.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in chunk])
        if progress:
            progress(step, min(start + _CHUNK, total), total)


def _version_exists(conn, version: str) -> bool:
    query = select(func.count()).select_from(catalogue_versions).where(
        catalogue_versions.c.version == version
    )
    return bool(conn.execute(query).scalar_one())


def load_catalogue(
    engine: Engine,
    path: Path,
    version: str,
    progress: Progress | None = None,
    source: str | None = None,
    *,
    replace: bool = False,
) -> LoadSummary:
    """Load an ESCO release (folder or .zip of ESCO CSV files) as `version`, in one transaction.

    `progress(step, done, total)` is called with step "reading files" (done = files read),
    then "inserting concepts" and "inserting labels" (done = rows inserted).
    Raises CatalogueError for any unusable input, or if the version is already loaded and
    `replace` is false; nothing is stored then.
    """
    started = time.perf_counter()
    _check_version(version)
    path = Path(path)
    if not replace and version in versions(engine):
        # Checked again inside the transaction; this early check only saves reading the files.
        raise CatalogueError(f"version {version} is already loaded")
    sources = _find_sources(path)
    load_version = version_key(version)

    if progress:
        progress("reading files", 0, len(sources))
    files: list[_FileData] = []
    for done, src in enumerate(sources, start=1):
        data = _read(src)
        if not data.skipped:
            files.append(data)
        if progress:
            progress("reading files", done, len(sources))

    # The concept set: English full files per kind, else that kind's full files of any language.
    catalogue: dict[str, tuple[str, str]] = {}
    for kind in _KIND_ORDER:
        full = [f for f in files if f.source.fmt == "full" and f.source.kind == kind]
        primary = [f for f in full if f.source.language == "en"] or full
        primary.sort(key=lambda f: _rank(f.source, load_version), reverse=True)
        for f in primary:
            for uri, value in f.concepts.items():
                catalogue.setdefault(uri, value)
    if not catalogue:
        raise CatalogueError(f"{path}: the ESCO files hold no concepts")

    # Preferred labels: one per concept and language, from the best-ranked file.
    preferred: dict[tuple[str, str], str] = {}
    for f in sorted(files, key=lambda f: _rank(f.source, load_version), reverse=True):
        for uri, lang, label in f.preferred:
            if uri in catalogue:
                preferred.setdefault((uri, lang), label)
    labels: dict[tuple[str, str, str, str], None] = {
        (uri, lang, "preferred", label): None for (uri, lang), label in preferred.items()
    }
    for f in files:
        for uri, lang, kind, label in f.others:
            if uri in catalogue:
                labels.setdefault((uri, lang, kind, label), None)

    # Tuples in the tables' column order (version, uri, concept_type, status) and
    # (version, uri, language, kind, label).
    concept_rows = [(version, uri, kind, status) for uri, (kind, status) in catalogue.items()]
    label_rows = [(version, *label) for label in labels]
    languages = tuple(sorted({lang for _, lang, _, _ in labels}))

    with engine.connect().execution_options(write=True) as conn, conn.begin():
        if _version_exists(conn, version):
            if not replace:
                raise CatalogueError(f"version {version} is already loaded")
            for table in (concept_labels, concepts, catalogue_versions):
                conn.execute(delete(table).where(table.c.version == version))
        _insert_chunks(conn, concepts, concept_rows, "inserting concepts", progress)
        _insert_chunks(conn, concept_labels, label_rows, "inserting labels", progress)
        conn.execute(catalogue_versions.insert(), {
            "version": version,
            "loaded_at": datetime.now(UTC),
            "source": (source or str(path.resolve()))[:500],
            "concepts": len(concept_rows),
            "labels": len(label_rows),
        })
    return LoadSummary(
        version=version, concepts=len(concept_rows), labels=len(label_rows),
        languages=languages, files=len(files), seconds=time.perf_counter() - started,
    )


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
    except CatalogueError:
        # Another process (a second `init`) may have loaded it meanwhile: that is success.
        if BUNDLED_VERSION in versions(engine):
            return None
        raise


# ---------------------------------------------------------------------------------------------
# Reading the catalogue


def versions(engine: Engine) -> list[str]:
    """Every loaded version, oldest to newest."""
    with engine.connect() as conn:
        found = conn.execute(select(catalogue_versions.c.version)).scalars().all()
    return sorted(found, key=version_key)


def current_version(engine: Engine) -> str | None:
    """The newest loaded version, or None when no catalogue is loaded."""
    loaded = versions(engine)
    return loaded[-1] if loaded else None


def catalogue_token(engine: Engine) -> tuple[tuple[str, str], ...]:
    """Changes whenever a version is loaded, replaced or removed: one small query."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(catalogue_versions.c.version, catalogue_versions.c.loaded_at)
        ).all()
    return tuple(sorted((v, str(at)) for v, at in rows))


class CatalogueIndex:
    """In-memory snapshot of the catalogue's URIs, for per-event checks by the collector."""

    def __init__(self, types: dict[str, str], loaded: Iterable[str], token: tuple) -> None:
        self._types = types
        self.versions: tuple[str, ...] = tuple(sorted(loaded, key=version_key))
        self.current_version: str | None = self.versions[-1] if self.versions else None
        self.token = token

    catalogue_token = staticmethod(catalogue_token)

    @classmethod
    def load(cls, engine: Engine) -> CatalogueIndex:
        """Read every concept of every loaded version."""
        token = catalogue_token(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                select(concepts.c.version, concepts.c.uri, concepts.c.concept_type)
            ).all()
        # The newest version that has a concept says its type.
        types: dict[str, str] = {}
        for _, uri, kind in sorted(rows, key=lambda r: version_key(r[0])):
            types[uri] = kind
        return cls(types, [v for v, _ in token], token)

    def knows(self, uri: str) -> bool:
        """Whether any loaded version holds this concept URI."""
        return uri in self._types

    def concept_type(self, uri: str) -> str | None:
        """occupation | skill | isco | skill_group, or None for an unknown URI."""
        return self._types.get(uri)

    def __len__(self) -> int:
        return len(self._types)


def preferred_labels(
    engine: Engine, uris: Iterable[str], language: str, version: str | None = None
) -> dict[str, str]:
    """Preferred label of each known URI in `language`, else in English.

    With a version, only that version is read. Without, the newest version having a label in
    `language` for the concept wins, else the newest one having an English label: concepts
    that a newer release dropped still get their label.
    """
    wanted = sorted(set(uris))
    langs = sorted({language, "en"})
    found: dict[str, tuple[tuple[int, ...], tuple[int, ...], str]] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            query = select(
                concept_labels.c.version, concept_labels.c.uri,
                concept_labels.c.language, concept_labels.c.label,
            ).where(
                concept_labels.c.kind == "preferred",
                concept_labels.c.language.in_(langs),
                concept_labels.c.uri.in_(wanted[start:start + 500]),
            )
            if version is not None:
                query = query.where(concept_labels.c.version == version)
            for ver, uri, lang, label in conn.execute(query):
                # Own language before English, then newer before older.
                key = ((1,) if lang == language else (0,), version_key(ver), label)
                if uri not in found or key > found[uri]:
                    found[uri] = key
    return {uri: key[2] for uri, key in found.items()}
