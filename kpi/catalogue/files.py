"""ESCO's download files: which files of a folder or zip hold concepts and labels, and what
a release made of them says.

A release is read from a folder (or a .zip file) in ESCO's own CSV download format:

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
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from kpi.catalogue.versions import version_key
from kpi.vocabulary import LANGUAGES

# progress(step, done, total)
Progress = Callable[[str, int, int], None]

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
# Any http URI without blanks, not kpi.vocabulary.CONCEPT_URI: the files are ESCO's (or an
# export of them) and their URIs are stored as given. Events are held to CONCEPT_URI when they
# arrive, so a catalogue concept that no event can name is harmless; this check only catches a
# shifted or garbled column.
_URI_RE = re.compile(r"^http://\S+$")
_URI_MAX = 200  # concepts.uri is String(200)

# ESCO descriptions can be long; the csv module's default field limit (128 KiB) is too tight
# for some third-party exports.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class CatalogueError(Exception):
    """A catalogue that cannot be loaded; the message names the file (and line)."""


@dataclass(frozen=True)
class Release:
    """What a release's files say, merged: its concepts and their labels."""

    concepts: dict[str, tuple[str, str]]  # uri -> (concept type, status)
    labels: list[tuple[str, str, str, str]]  # (uri, language, kind, label), no duplicates
    languages: tuple[str, ...]  # the languages having at least one label, sorted
    files: int  # files read (side files that hold no labels not counted)


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
# A release: its files merged


def _rank(source: _Source, load_version: tuple[int, ...]) -> tuple[Any, ...]:
    """Higher is better: which file's preferred label wins for a concept and language."""
    version = source.file_version or load_version
    # A file claiming a newer version than the one being loaded is still of that load.
    version = min(version, load_version)
    fmt = {"full": 2, "wide": 1, "collection": 0}[source.fmt]
    return (version, not source.suffixed, fmt, source.name)



def read_release(path: Path, version: str, progress: Progress | None = None) -> Release:
    """Read every recognised file of a release (folder or .zip) loaded as `version`.

    `progress(step, done, total)` is called with step "reading files" (done = files read).
    Raises CatalogueError for any unusable input.
    """
    path = Path(path)
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

    return Release(
        concepts=catalogue, labels=list(labels),
        languages=tuple(sorted({lang for _, lang, _, _ in labels})), files=len(files),
    )
