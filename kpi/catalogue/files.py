"""ESCO's download files: which files of a folder or zip hold concepts and labels, and what
a release made of them says.

A release is read from one or more folders (or .zip files) in ESCO's own CSV download format:

* full files `occupations_<lang>.csv`, `skills_<lang>.csv`, `ISCOGroups_<lang>.csv`,
  `skillGroups_<lang>.csv`, optionally gzipped (`.csv.gz`) and optionally with a suffix after
  the language (`_v1.0.8`, `_api-2026-08`, `_collections_v1.2.0`); columns conceptUri and
  preferredLabel, optionally altLabels, hiddenLabels, status, code, modifiedDate, one value
  per line in multi-valued cells;
* wide tables `<kind>_preferredLabel_<anything>.csv[.gz]` with a conceptUri column and one
  column of preferred labels per language (the bundled 26-language and fi/sv tables);
* ESCO's collection files `<name>Collection_<lang>.csv[.gz]` (green, digital, transversal...
  skills), whose members are recorded per collection and whose multi-valued cells are
  separated by " | ".

The language in a file name is a language tag: `en`, or `en-us`, read as the ESCO language of
its primary subtag; a file whose tag names no ESCO language is ignored (and said so). Every
other file of a download (relations, hierarchy, concept schemes) is ignored too.

Within one folder or zip, the concepts are the URIs of its English full files (or, for a kind
without an English file, of its full files in the other languages); the other files only add
labels to those concepts. Where several files give a preferred label for the same concept and
language, the file of the newest ESCO version wins (a version suffix in the name tells it; a
file without one is taken to be of the version being loaded), and alternative and hidden
labels are the union of all files, because a label that ESCO published for a concept is not a
"new" label. Several folders or zips read together must agree: for every kind that two of them
both have, the same URIs with the same types (first_difference); a kind that only one of them
has is taken from it.
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import IO, Any

from kpi.catalogue.versions import version_key
from kpi.vocabulary import LANGUAGES

# progress(step, done, total)
Progress = Callable[[str, int, int], None]

_KINDS = {
    "occupations": "occupation",
    "skills": "skill",
    "ISCOGroups": "isco",
    "skillGroups": "skill_group",
}
# When a URI turns up under two kinds, the first kind in this order keeps it.
KIND_ORDER = ("occupation", "isco", "skill", "skill_group")
_KIND_ALT = "|".join(_KINDS)
# A language tag as in `en` or `en-us` (BCP 47: a primary subtag, then optional subtags).
_TAG = r"(?P<tag>[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*)"
_SUFFIX = r"(?P<suffix>_[A-Za-z0-9._-]+)?\.csv(?P<gz>\.gz)?$"
_FULL_RE = re.compile(rf"^(?P<kind>{_KIND_ALT})_{_TAG}{_SUFFIX}")
_WIDE_RE = re.compile(
    rf"^(?P<kind>{_KIND_ALT})_preferredLabel_(?P<suffix>[A-Za-z0-9._-]+)\.csv(?P<gz>\.gz)?$"
)
_COLLECTION_RE = re.compile(rf"^(?P<name>[A-Za-z]+Collection)_{_TAG}{_SUFFIX}")
_FILE_VERSION_RE = re.compile(r"_v(\d+(?:\.\d+)*)")
# ESCO's collection files and the names they are recorded under (concept_collections).
COLLECTIONS = {
    "greenSkillsCollection": "green",
    "digitalSkillsCollection": "digital",
    "digCompSkillsCollection": "digcomp",
    "transversalSkillsCollection": "transversal",
    "languageSkillsCollection": "language",
    "researchSkillsCollection": "research",
    "researchOccupationsCollection": "research_occupations",
}
# Any http URI without blanks, not kpi.vocabulary.CONCEPT_URI: the files are ESCO's (or an
# export of them) and their URIs are stored as given. Events are held to CONCEPT_URI when they
# arrive, so a catalogue concept that no event can name is harmless; this check only catches a
# shifted or garbled column.
_URI_RE = re.compile(r"^http://\S+$")
_URI_MAX = 200  # concepts.uri is String(200)
_CODE_MAX = 40  # concepts.code is String(40)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}")
# The files of one release were last modified within weeks of each other (ESCO publishes a
# release a year or more after the previous one), so files whose newest modifiedDate lie more
# than a year apart are, most likely, of two releases.
_SPREAD_DAYS = 365

# ESCO descriptions can be long; the csv module's default field limit (128 KiB) is too tight
# for some third-party exports.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class CatalogueError(Exception):
    """A catalogue that cannot be loaded; the message names the file (and line)."""


@dataclass(frozen=True)
class Release:
    """What a release's files say, merged: its concepts, their labels, and what was read."""

    concepts: dict[str, tuple[str, str]]  # uri -> (concept type, status)
    labels: list[tuple[str, str, str, str]]  # (uri, language, kind, label), no duplicates
    languages: tuple[str, ...]  # the languages having at least one label, sorted
    files: int  # files read (side files that hold no labels not counted)
    codes: dict[str, str] = field(default_factory=dict)  # uri -> ESCO's `code`
    collections: dict[str, set[str]] = field(default_factory=dict)  # name -> member uris
    kinds: frozenset[str] = frozenset()  # the concept types the files define
    modified: str | None = None  # newest modifiedDate (YYYY-MM-DD) of the files of `version`
    read: list[dict[str, Any]] = field(default_factory=list)  # per file read: path, kind...
    ignored: list[dict[str, str]] = field(default_factory=list)  # per file: path, from, reason
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # report lines that are not warnings


@dataclass(frozen=True)
class _Source:
    """One recognised CSV file of a catalogue folder or zip."""

    name: str        # file name, for messages and ordering
    display: str     # path shown in error messages
    rel: str         # path inside the folder or zip, for the report
    root: str        # the folder or zip given
    fmt: str         # full | wide | collection
    kind: str | None  # concept type; None for collection files
    language: str | None  # the ESCO language; None for wide tables (one column per language)
    tag: str         # the language tag as written in the name (`en-us`)
    suffix: str      # what follows the language in the name (`_v1.0.8`), without .csv[.gz]
    collection: str | None  # collection files: the name it is recorded under
    file_version: tuple[int, ...] | None  # from a `_v1.0.8` suffix
    suffixed: bool
    opener: Callable[[], IO[bytes]]


def first_difference(
    base: dict[str, tuple[str, ...]], new: dict[str, tuple[str, ...]], kinds: frozenset[str],
    base_name: str, new_name: str,
) -> tuple[str, int] | None:
    """(the first difference in words, how many) between two concept sets, or None.

    `base` and `new` map URIs to tuples whose first item is the concept type. Only the kinds
    that `new` has (`kinds`) and `base` has too are compared: a kind the new files do not
    hold says nothing, and a kind the base lacks is simply added. A URI of both with two
    types always differs.
    """
    base_kinds = {value[0] for value in base.values()}
    compared = kinds & base_kinds
    differences: list[str] = []
    for uri in sorted(set(base) | set(new)):
        had = base[uri][0] if uri in base else None
        has = new[uri][0] if uri in new else None
        if had == has:
            continue
        if had is not None and has is not None:
            differences.append(f"{uri} is {_a(had)} in {base_name} but {_a(has)} in {new_name}")
        elif had is not None and had in compared:
            differences.append(f"{uri} ({_a(had)}) is in {base_name} but not in {new_name}")
        elif has is not None and has in compared:
            differences.append(f"{uri} ({_a(has)}) is in {new_name} but not in {base_name}")
    return (differences[0], len(differences)) if differences else None


def _a(kind: str) -> str:
    words = {"occupation": "an occupation", "skill": "a skill", "isco": "an ISCO group",
             "skill_group": "a skill group"}
    return words.get(kind, kind)


def collection_name(prefix: str) -> tuple[str, bool]:
    """(the name a `<prefix>_<lang>.csv` collection file is recorded under, known to ESCO?)."""
    if prefix in COLLECTIONS:
        return COLLECTIONS[prefix], True
    name = prefix
    for ending in ("SkillsCollection", "Collection"):
        if name.endswith(ending) and len(name) > len(ending):
            name = name[: -len(ending)]
            break
    return name.lower()[:40], False


# ---------------------------------------------------------------------------------------------
# Finding the files


def _classify(name: str) -> tuple[dict[str, Any] | None, str | None]:
    """(what a file name says, None) for a recognised file, else (None, why it is ignored)."""
    if not (name.endswith(".csv") or name.endswith(".csv.gz")):
        return None, "not a CSV file"
    m = _WIDE_RE.match(name)
    if m:
        return {"fmt": "wide", "kind": _KINDS[m["kind"]], "tag": "", "language": None,
                "suffix": "_" + m["suffix"], "collection": None}, None
    m = _FULL_RE.match(name) or _COLLECTION_RE.match(name)
    if not m:
        return None, ("not one of ESCO's concept, label or collection files (relations, "
                      "hierarchies and concept schemes are not loaded)")
    tag = m["tag"]
    primary = tag.split("-", 1)[0].lower()
    if primary not in LANGUAGES:
        return None, (f"language tag {tag!r}: {primary!r} is not one of ESCO's 28 languages "
                      f"({', '.join(sorted(LANGUAGES))})")
    info: dict[str, Any] = {"tag": tag, "language": primary, "suffix": m["suffix"] or ""}
    if "name" in m.groupdict():
        info.update(fmt="collection", kind=None, collection=collection_name(m["name"])[0])
    else:
        info.update(fmt="full", kind=_KINDS[m["kind"]], collection=None)
    return info, None


def _make_source(name: str, display: str, rel: str, root: str,
                 opener: Callable[[], IO[bytes]]) -> tuple[_Source | None, str | None]:
    info, why = _classify(name)
    if info is None:
        return None, why
    m = _FILE_VERSION_RE.search(info["suffix"])
    return _Source(
        name=name, display=display, rel=rel, root=root, fmt=info["fmt"], kind=info["kind"],
        language=info["language"], tag=info["tag"], suffix=info["suffix"],
        collection=info["collection"], file_version=version_key(m[1]) if m else None,
        suffixed=bool(info["suffix"]),
        opener=opener,
    ), None


def _find_sources(path: Path) -> tuple[list[_Source], list[dict[str, str]]]:
    """The recognised files of a folder or zip, and the others with the reason."""
    if not path.exists():
        raise CatalogueError(f"{path}: no such file or folder")
    sources: list[_Source] = []
    ignored: list[dict[str, str]] = []
    root = str(path)

    def add(name: str, display: str, rel: str, opener: Callable[[], IO[bytes]]) -> None:
        source, why = _make_source(name, display, rel, root, opener)
        if source:
            sources.append(source)
        else:
            ignored.append({"path": rel, "from": root, "reason": why or ""})

    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            add(file.name, str(file), file.relative_to(path).as_posix(),
                partial(file.open, "rb"))
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
            add(member.rsplit("/", 1)[-1], f"{path}:{member}", member, opener(member))
    else:
        raise CatalogueError(f"{path}: expected a folder or a .zip file of ESCO CSV files")
    if not any(s.fmt == "full" for s in sources):
        raise CatalogueError(
            f"{path}: no ESCO catalogue files found (expected files such as occupations_en.csv, "
            "skills_en.csv, ISCOGroups_en.csv, skillGroups_en.csv, optionally .csv.gz)"
        )
    return sources, ignored


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
    """What one file says: concepts (full files), labels, codes, collection members."""

    source: _Source
    concepts: dict[str, tuple[str, str]]  # uri -> (concept type, status)
    preferred: list[tuple[str, str, str]]  # (uri, language, label)
    others: list[tuple[str, str, str, str]]  # (uri, language, kind, label)
    codes: dict[str, str] = field(default_factory=dict)  # uri -> code (full files)
    members: list[str] = field(default_factory=list)  # collection files: their concepts
    languages: tuple[str, ...] = ()  # wide tables: their language columns
    rows: int = 0
    modified: str | None = None  # newest modifiedDate, YYYY-MM-DD
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
        data.languages = tuple(sorted(lang for lang, _ in langs))
        for line, row in rows:
            data.rows += 1
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
    full = source.fmt == "full"
    i_code = col.get("code") if full else None
    i_modified = col.get("modifiedDate") if full else None
    newest = ""
    multi = [(col[c], kind) for c, kind in (("altLabels", "alt"), ("hiddenLabels", "hidden"))
             if c in col]
    bars = source.fmt == "collection"
    for line, row in rows:
        data.rows += 1
        uri = _check_uri(row[i_uri], where, line)
        if full:
            assert source.kind is not None
            status = (row[i_status].strip() if i_status is not None else "") or "released"
            data.concepts.setdefault(uri, (source.kind, status[:20]))
            if i_code is not None and (code := row[i_code].strip()):
                data.codes.setdefault(uri, code[:_CODE_MAX])
            if i_modified is not None and _DATE_RE.match(stamp := row[i_modified].strip()):
                newest = max(newest, stamp[:10])
        else:
            data.members.append(uri)
        label = row[i_pref].strip()
        if label:
            data.preferred.append((uri, lang, label))
        for i, kind in multi:
            for value in _split(row[i], bars):
                data.others.append((uri, lang, kind, value))
    data.modified = newest or None
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


def _version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def _primary(files: list[_FileData], kind: str) -> list[_FileData]:
    """The files that define a kind's concepts: its English full files, else all of them."""
    full = [f for f in files if f.source.fmt == "full" and f.source.kind == kind]
    return [f for f in full if f.source.language == "en"] or full


def _path_concepts(
    files: list[_FileData], load_version: tuple[int, ...]
) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """The concepts of one folder or zip, and their codes."""
    catalogue: dict[str, tuple[str, str]] = {}
    codes: dict[str, str] = {}
    for kind in KIND_ORDER:
        primary = sorted(_primary(files, kind), key=lambda f: _rank(f.source, load_version),
                         reverse=True)
        for f in primary:
            for uri, value in f.concepts.items():
                catalogue.setdefault(uri, value)
    # A code from the defining files first, else from any full file of the concept.
    for f in sorted((f for f in files if f.source.fmt == "full"),
                    key=lambda f: (f.source.language == "en", _rank(f.source, load_version)),
                    reverse=True):
        for uri, code in f.codes.items():
            if uri in catalogue:
                codes.setdefault(uri, code)
    return catalogue, codes


def _path_warnings(path: Path, files: list[_FileData], load_version: tuple[int, ...]
                   ) -> list[str]:
    """What in one folder or zip looks like the files of two releases, or of another one."""
    warnings: list[str] = []
    full = [f for f in files if f.source.fmt == "full"]
    # 1. The same file twice (in two subfolders, or once gzipped and once not).
    seen: dict[tuple[str | None, str, str], list[str]] = {}
    for f in full:
        key = (f.source.kind, f.source.tag.lower(), f.source.suffix)
        seen.setdefault(key, []).append(f.source.rel)
    for names in seen.values():
        if len(names) > 1:
            warnings.append(
                f"{path}: {' and '.join(names)} are the same file of two releases? "
                f"Their concepts and labels were merged"
            )
    # 2. The files defining the concepts named as of other ESCO versions.
    defining = [f for kind in KIND_ORDER for f in _primary(files, kind)]
    named = {f.source.rel: f.source.file_version or load_version for f in defining}
    if len(set(named.values())) > 1:
        listed = ", ".join(f"{rel} (v{_version_text(v)})" for rel, v in sorted(named.items()))
        warnings.append(f"{path}: the files defining the concepts are of different ESCO "
                        f"versions: {listed}; the files of two releases?")
    elif named and (only := next(iter(named.values()))) != load_version:
        warnings.append(f"{path}: the files defining the concepts are named as ESCO "
                        f"v{_version_text(only)} but are loaded as {_version_text(load_version)}")
    # 3. Files of the version being loaded whose newest modifiedDate lie far apart.
    dated = sorted((f.modified, f.source.rel) for f in full
                   if f.modified and (f.source.file_version or load_version) == load_version)
    if len(dated) > 1:
        (old, old_name), (new, new_name) = dated[0], dated[-1]
        if (date.fromisoformat(new) - date.fromisoformat(old)).days > _SPREAD_DAYS:
            warnings.append(
                f"{path}: the newest modifiedDate of {old_name} ({old}) is more than a year "
                f"before that of {new_name} ({new}): the files of two releases?"
            )
    return warnings


def _file_entry(f: _FileData) -> dict[str, Any]:
    s = f.source
    kind = f"collection {s.collection}" if s.fmt == "collection" else s.kind
    language = ",".join(f.languages) if s.fmt == "wide" else s.language
    return {"path": s.rel, "from": s.root, "format": s.fmt, "kind": kind,
            "language": language, "rows": f.rows,
            "version": _version_text(s.file_version) if s.file_version else None,
            "modified": f.modified}


def _as_paths(paths: Path | str | Sequence[Path | str]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def read_release(paths: Path | str | Sequence[Path | str], version: str,
                 progress: Progress | None = None) -> Release:
    """Read every recognised file of a release (folders or .zip files) loaded as `version`.

    `progress(step, done, total)` is called with step "reading files" (done = files read).
    Raises CatalogueError for any unusable input, and when the folders or zips disagree on
    the concepts of a kind they both hold.
    """
    roots = _as_paths(paths)
    if not roots:
        raise CatalogueError("no folder or zip file given")
    found = [_find_sources(root) for root in roots]
    load_version = version_key(version)
    total = sum(len(sources) for sources, _ in found)

    if progress:
        progress("reading files", 0, total)
    done = 0
    per_path: list[list[_FileData]] = []
    ignored: list[dict[str, str]] = []
    for sources, left_out in found:
        files: list[_FileData] = []
        for src in sources:
            data = _read(src)
            if data.skipped:
                left_out.append({"path": src.rel, "from": src.root,
                                 "reason": "holds no labels (no preferredLabel or language "
                                           "columns)"})
            else:
                files.append(data)
            done += 1
            if progress:
                progress("reading files", done, total)
        per_path.append(files)
        ignored.extend(sorted(left_out, key=lambda entry: entry["path"]))

    warnings: list[str] = []
    catalogue: dict[str, tuple[str, str]] = {}
    codes: dict[str, str] = {}
    kinds: set[str] = set()
    for number, (root, files) in enumerate(zip(roots, per_path, strict=True)):
        concepts, path_codes = _path_concepts(files, load_version)
        if not concepts:
            raise CatalogueError(f"{root}: the ESCO files hold no concepts")
        path_kinds = frozenset(kind for kind, _ in concepts.values())
        if number:
            earlier = ", ".join(str(r) for r in roots[:number])
            found_difference = first_difference(catalogue, concepts, path_kinds,
                                                str(earlier), str(root))
            if found_difference:
                first, count = found_difference
                raise CatalogueError(
                    f"{root}: its concepts disagree with those of {earlier}: {first} "
                    f"({count} difference{'s' if count > 1 else ''}); nothing was stored"
                )
        for uri, value in concepts.items():
            catalogue.setdefault(uri, value)
        for uri, code in path_codes.items():
            codes.setdefault(uri, code)
        kinds |= path_kinds
        warnings.extend(_path_warnings(root, files, load_version))

    all_files = [f for files in per_path for f in files]
    # Preferred labels: one per concept and language, from the best-ranked file.
    preferred: dict[tuple[str, str], str] = {}
    for f in sorted(all_files, key=lambda f: _rank(f.source, load_version), reverse=True):
        for uri, lang, label in f.preferred:
            if uri in catalogue:
                preferred.setdefault((uri, lang), label)
    labels: dict[tuple[str, str, str, str], None] = {
        (uri, lang, "preferred", label): None for (uri, lang), label in preferred.items()
    }
    for f in all_files:
        for uri, lang, kind, label in f.others:
            if uri in catalogue:
                labels.setdefault((uri, lang, kind, label), None)

    collections: dict[str, set[str]] = {}
    notes: list[str] = []
    for f in all_files:
        s = f.source
        if s.fmt != "collection" or s.collection is None:
            continue
        prefix = s.name.split("_", 1)[0]
        if not collection_name(prefix)[1]:
            notes.append(f"{s.rel}: not one of ESCO's current collections; recorded as "
                         f"collection {s.collection!r}")
        members = collections.setdefault(s.collection, set())
        outside = 0
        for uri in f.members:
            if uri in catalogue:
                members.add(uri)
            else:
                outside += 1
        if outside:
            notes.append(f"{s.rel}: {outside} member{'s' if outside > 1 else ''} not among "
                         f"the concepts of the release, left out of collection {s.collection}")

    of_version = [f.modified for f in all_files if f.modified
                  and (f.source.file_version or load_version) == load_version]
    return Release(
        concepts=catalogue, labels=list(labels),
        languages=tuple(sorted({lang for _, lang, _, _ in labels})), files=len(all_files),
        codes=codes, collections={name: members for name, members in collections.items()
                                  if members},
        kinds=frozenset(kinds), modified=max(of_version) if of_version else None,
        read=[_file_entry(f) for f in all_files], ignored=ignored, warnings=warnings,
        notes=notes,
    )
