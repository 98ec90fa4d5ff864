"""`esco-kpi export --quarter YYYY-Qn`: one folder of CSV files per quarter, safe to publish.

Disclosure control (README, "Indicators and exports"): free-text rows need `export_min_implementers`
distinct implementers; counts below `export_min_count` become `<5`, implementer counts below
`export_min_implementers` become `<3`; small countries and sectors fold into `other`; a figure
derived from a suppressed one is left blank. Text cells never start a spreadsheet formula.
The same data gives byte-identical CSV files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kpi.exports.csvfile import render_csv, safe_text
from kpi.settings import Settings
from kpi.warehouse.indicators import Period, Result, query

QUARTER = re.compile(r"(\d{4})-Q([1-4])")


class ExportError(Exception):
    """An export that cannot be written; the message says why."""


@dataclass(frozen=True)
class Thresholds:
    min_implementers: int
    min_count: int

    def count(self, value: int | None) -> str:
        """A count as published: `0`, `<5` for 1..4, else the number."""
        if value is None:
            return ""
        return f"<{self.min_count}" if 0 < value < self.min_count else str(value)

    def implementers(self, value: int | None) -> str:
        if value is None:
            return ""
        return f"<{self.min_implementers}" if 0 < value < self.min_implementers else str(value)

    def hides_count(self, value: int | None) -> bool:
        return value is not None and 0 < value < self.min_count

    def hides_implementers(self, value: int | None) -> bool:
        return value is not None and 0 < value < self.min_implementers


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def parse_quarter(text: str) -> Period:
    """`2026-Q3` -> the period of that quarter; ExportError for anything else."""
    match = QUARTER.fullmatch(text.strip())
    if not match:
        raise ExportError(f"quarter must look like 2026-Q3, got {text!r}")
    return Period.quarter(text.strip())


@dataclass(frozen=True)
class ExportSummary:
    quarter: str
    folder: Path
    files: dict[str, int]  # file name -> rows


Rows = list[list[str]]


def _most_used(result: Result, t: Thresholds) -> tuple[list[str], Rows]:
    header = ["rank", "concept_uri", "label_en", "concept_type", "status", "usage",
              "implementers", "previous_usage", "change", "change_pct"]
    shown, hidden = [], []
    for r in result.rows:
        small = t.hides_count(r["usage"])
        prev_small = t.hides_count(r["previous_usage"])
        derived_blank = small or prev_small
        row = ["" if small else str(r["rank"]), safe_text(r["concept_uri"]),
               safe_text(r["label_en"]), safe_text(r["concept_type"]), safe_text(r["status"]),
               t.count(r["usage"]), t.implementers(r["implementers"]),
               t.count(r["previous_usage"]),
               "" if derived_blank else str(r["change"]),
               "" if derived_blank or r["change_pct"] is None else _number(r["change_pct"], 1)]
        (hidden if small else shown).append(row)
    # Rows with a suppressed usage go last, by URI: their order must not reveal their values.
    hidden.sort(key=lambda row: row[1])
    return header, shown + hidden


def _least_used(result: Result, t: Thresholds) -> tuple[list[str], Rows]:
    header = ["concept_uri", "label_en", "concept_type", "usage", "implementers"]
    zero, small, rest = [], [], []
    for r in result.rows:
        row = [safe_text(r["concept_uri"]), safe_text(r["label_en"]),
               safe_text(r["concept_type"]), t.count(r["usage"]), t.implementers(r["implementers"])]
        bucket = zero if r["usage"] == 0 else small if t.hides_count(r["usage"]) else rest
        bucket.append(row)
    zero.sort(key=lambda row: row[0])
    small.sort(key=lambda row: row[0])
    return header, zero + small + rest


def _coverage(result: Result, t: Thresholds) -> tuple[list[str], Rows]:
    header = ["concept_type", "catalogue_version", "concepts", "used", "share"]
    rows = [[safe_text(r["concept_type"]), safe_text(r["catalogue_version"]),
             str(r["concepts"]), t.count(r["used"]),
             "" if t.hides_count(r["used"]) else _number(r["share"], 4)]
            for r in result.rows]
    return header, rows


def _free_text_rows(result: Result, t: Thresholds) -> Iterable[dict]:
    return (r for r in result.rows if r["implementers"] >= t.min_implementers)


def _candidate_labels(result: Result, t: Thresholds) -> tuple[list[str], Rows]:
    header = ["concept_uri", "label_en", "concept_type", "language", "label", "spellings",
              "events", "usage", "implementers", "catalogue_has_language", "verdict"]
    rows = [[safe_text(r["concept_uri"]), safe_text(r["label_en"]), safe_text(r["concept_type"]),
             safe_text(r["language"]), safe_text(r["label"]), str(r["spellings"]),
             t.count(r["events"]), t.count(r["usage"]), t.implementers(r["implementers"]),
             "true" if r["catalogue_has_language"] else "false", safe_text(r["verdict"])]
            for r in _free_text_rows(result, t)]
    return header, rows


def _proposals(result: Result, t: Thresholds) -> tuple[list[str], Rows]:
    header = ["label", "label_norm", "concept_type", "language", "spellings", "implementers",
              "events", "usage", "broader_uris", "broader_labels_en"]
    rows = [[safe_text(r["label"]), safe_text(r["label_norm"]), safe_text(r["concept_type"]),
             safe_text(r["language"]), str(r["spellings"]), t.implementers(r["implementers"]),
             t.count(r["events"]), t.count(r["usage"]),
             safe_text(" | ".join(r["broader_uris"] or [])),
             safe_text(" | ".join(label or "" for label in (r["broader_labels_en"] or [])))]
            for r in _free_text_rows(result, t)]
    return header, rows


def _feedback(result: Result, t: Thresholds) -> tuple[list[str], Rows]:
    header = ["language", "concept_uri", "label_en", "concept_type", "current_label",
              "suggested_label", "events", "usage", "implementers", "concept_events",
              "concept_implementers"]
    rows = [[safe_text(r["language"]), safe_text(r["concept_uri"]), safe_text(r["label_en"]),
             safe_text(r["concept_type"]), safe_text(r["current_label"]),
             safe_text(r["suggested_label"]), t.count(r["events"]), t.count(r["usage"]),
             t.implementers(r["implementers"]), t.count(r["concept_events"]),
             t.implementers(r["concept_implementers"])]
            for r in _free_text_rows(result, t)]
    return header, rows


def _fold(rows: list[dict], size: str, t: Thresholds) -> tuple[list[dict], list[dict]]:
    """(kept, folded): a row of fewer than min_implementers implementers (column `size`)
    folds into `other`. While the folded rows hold some, but fewer than min_implementers,
    implementers together, the smallest kept row folds too: an `other` of one or two portals
    would show their figures, and the total minus the rows shown would give them away."""
    kept = sorted((r for r in rows if r[size] >= t.min_implementers),
                  key=lambda r: (r[size], str(r.get("value") or r.get("country"))))
    folded = [r for r in rows if r[size] < t.min_implementers]
    while kept and 0 < sum(r[size] for r in folded) < t.min_implementers:
        folded.append(kept.pop(0))
    return kept, folded


def _uptake(result: Result, t: Thresholds) -> tuple[list[str], Rows]:
    header = ["dimension", "value", "active_implementers", "events", "usage",
              "events_per_implementer", "esco_versions"]
    from kpi.catalogue.versions import version_key

    rows: Rows = []
    for dimension in ("country", "sector"):
        groups = [r for r in result.rows if r["dimension"] == dimension]
        kept, folded = _fold(groups, "active_implementers", t)
        if folded:
            versions = sorted({v for r in folded for v in (r["esco_versions"] or [])},
                              key=version_key)
            kept.append({"dimension": dimension, "value": "other",
                         "active_implementers": sum(r["active_implementers"] for r in folded),
                         "events": sum(r["events"] for r in folded),
                         "usage": sum(r["usage"] for r in folded), "esco_versions": versions})
        kept.sort(key=lambda r: (r["value"] == "other", r["value"]))
        for r in kept:
            n, events = r["active_implementers"], r["events"]
            blank = t.hides_implementers(n) or t.hides_count(events)
            rows.append([dimension, safe_text(r["value"]), t.implementers(n), t.count(events),
                         t.count(r["usage"]), "" if blank or not n else _number(events / n, 1),
                         safe_text(" | ".join(r["esco_versions"] or []))])
    return header, rows


def _languages(result: Result, t: Thresholds) -> tuple[list[str], Rows]:
    header = ["language", "usage", "events", "implementers", "concepts", "share"]
    rows = [[safe_text(r["language"]), t.count(r["usage"]), t.count(r["events"]),
             t.implementers(r["implementers"]), t.count(r["concepts"]),
             "" if t.hides_count(r["usage"]) else _number(r["share"], 4)]
            for r in result.rows]
    return header, rows


def _trends(result: Result, t: Thresholds) -> tuple[list[str], Rows]:
    header = ["kind", "trend", "concept_uri", "label_en", "concept_type", "language", "label",
              "previous_events", "current_events", "previous_usage", "current_usage",
              "share_ratio", "p_value", "p_adjusted", "previous_implementers",
              "current_implementers"]
    rows: Rows = []
    for r in result.rows:
        carried = max(r["previous_implementers"], r["current_implementers"])
        if r["kind"] != "concept" and carried < t.min_implementers:
            continue  # free text: the rule of candidate_alt_labels and new_concept_proposals
        counts = (r["previous_events"], r["current_events"], r["previous_usage"],
                  r["current_usage"])
        # the ratio and p-values are worked from the event counts: blank if one is hidden
        blank = any(t.hides_count(c) for c in counts)
        rows.append([
            r["kind"], r["trend"], safe_text(r["concept_uri"]), safe_text(r["label_en"]),
            safe_text(r["concept_type"]), safe_text(r["language"]), safe_text(r["label"]),
            *(t.count(c) for c in counts),
            "" if blank or r["share_ratio"] is None else _number(r["share_ratio"], 3),
            "" if blank else f"{r['p_value']:.3g}", "" if blank else f"{r['p_adjusted']:.3g}",
            t.implementers(r["previous_implementers"]), t.implementers(r["current_implementers"]),
        ])
    return header, rows


def _collections(result: Result, t: Thresholds) -> tuple[list[str], Rows]:
    """Per collection: its all-countries row, the countries kept, then `other`."""
    header = ["collection", "country", "base_type", "usage", "base_usage", "share",
              "implementers", "base_implementers", "concepts", "used", "coverage"]
    groups: dict[str, list[dict]] = {}
    for r in result.rows:
        groups.setdefault(r["collection"], []).append(r)
    rows: Rows = []
    for name, group in groups.items():
        shown = [{**r, "country": "all"} for r in group if r["country"] is None]
        countries = [r for r in group if r["country"] is not None]
        # A country folds when fewer than min_implementers sent usage of the collection's base
        # type there: then its row would be one or two portals' own mix.
        kept, folded = _fold(countries, "base_implementers", t)
        shown += sorted(kept, key=lambda r: r["country"])
        if any(r["base_implementers"] for r in folded):
            usage = sum(r["usage"] for r in folded)
            base = sum(r["base_usage"] for r in folded)
            # an implementer has one country: the sums of distinct implementers are exact; the
            # distinct concepts used are not (one used in two countries would count twice)
            shown.append({**folded[0], "country": "other", "usage": usage, "base_usage": base,
                          "share": round(usage / base, 4) if base else None,
                          "implementers": sum(r["implementers"] for r in folded),
                          "base_implementers": sum(r["base_implementers"] for r in folded),
                          "used": None, "coverage": None})
        for r in shown:
            blank_share = (r["share"] is None or t.hides_count(r["usage"])
                           or t.hides_count(r["base_usage"]))
            blank_coverage = r["used"] is None or t.hides_count(r["used"])
            rows.append([safe_text(name), safe_text(r["country"]), safe_text(r["base_type"]),
                         t.count(r["usage"]), t.count(r["base_usage"]),
                         "" if blank_share else _number(r["share"], 4),
                         t.implementers(r["implementers"]),
                         t.implementers(r["base_implementers"]), str(r["concepts"]),
                         t.count(r["used"]),
                         "" if blank_coverage else _number(r["coverage"], 4)])
    return header, rows


def _review_summary(rows: list[dict], t: Thresholds) -> tuple[list[str], Rows]:
    header = ["kind", "language", "open", "accepted", "rejected", "deferred", "released",
              "covered", "days_to_decision", "days_to_release"]
    out: Rows = []
    for r in rows:
        statuses = [r[c] for c in header[2:8]]
        decided = sum(statuses[1:5])  # accepted, rejected, deferred, released
        # a median over fewer than export_min_count items is left blank, like their count
        out.append([safe_text(r["kind"]), safe_text(r["language"]),
                    *(t.count(n) for n in statuses),
                    "" if r["days_to_decision"] is None or t.hides_count(decided)
                    else _number(r["days_to_decision"], 1),
                    "" if r["days_to_release"] is None or t.hides_count(r["released"])
                    else _number(r["days_to_release"], 1)])
    return header, out


FILES: dict[str, Callable[[Result, Thresholds], tuple[list[str], Rows]]] = {
    "most_used_concepts": _most_used,
    "least_used_concepts": _least_used,
    "catalogue_coverage": _coverage,
    "candidate_alt_labels": _candidate_labels,
    "new_concept_proposals": _proposals,
    "translation_feedback": _feedback,
    "implementer_uptake": _uptake,
    "language_usage": _languages,
    "concept_trends": _trends,
    "collection_usage": _collections,
}


def export_quarter(settings: Settings, quarter: str, out: Path,
                   progress: Callable[[str, int, int], None] | None = None) -> ExportSummary:
    """Write `out/<quarter>/` with one CSV per indicator and manifest.json."""
    from kpi.warehouse.reader import open_reader

    period = parse_quarter(quarter)
    quarter = quarter.strip()
    thresholds = Thresholds(settings["privacy.export_min_implementers"],
                            settings["privacy.export_min_count"])
    try:
        reader = open_reader(settings)
    except FileNotFoundError:
        raise ExportError("nothing aggregated yet: run `esco-kpi aggregate` first") from None
    try:
        uptake = query(reader, "implementer_uptake", period)
        if not any(r["events"] for r in uptake.rows):
            raise ExportError(f"no data for {quarter} ({period.start} to {period.end}): no "
                              f"accepted events in the warehouse for that quarter")
        files: dict[str, bytes] = {}
        row_counts: dict[str, int] = {}
        for n, (name, build) in enumerate(FILES.items(), start=1):
            result = uptake if name == "implementer_uptake" else query(reader, name, period)
            header, rows = build(result, thresholds)
            files[f"{name}.csv"] = render_csv(header, rows).encode("utf-8")
            row_counts[f"{name}.csv"] = len(rows)
            if progress:
                progress("writing files", n, len(FILES))
        # The review loop as it stands now (its statuses live in the ingest store): counts and
        # medians per kind and language, no text.
        header, rows = _review_summary(_review_rows(settings), thresholds)
        files["review_summary.csv"] = render_csv(header, rows).encode("utf-8")
        row_counts["review_summary.csv"] = len(rows)
        # The snapshot the reader holds, not the manifest of now: a run may publish meanwhile.
        seq, watermark, version = reader.execute(
            "select seq, watermark, catalogue_version from reader_info").fetchone()
    finally:
        reader.close()
    manifest = {
        "quarter": quarter,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "catalogue_version": version,
        "warehouse_snapshot": seq,
        "aggregated_through_event_id": watermark,
        "thresholds": {"export_min_implementers": thresholds.min_implementers,
                       "export_min_count": thresholds.min_count},
        "files": {name: {"rows": row_counts[name],
                         "sha256": hashlib.sha256(body).hexdigest()}
                  for name, body in files.items()},
    }
    folder = out / quarter
    _write_folder(folder, {**files, "manifest.json": (json.dumps(manifest, indent=2) + "\n")
                           .encode("utf-8")})
    return ExportSummary(quarter, folder, {k: v["rows"] for k, v in manifest["files"].items()})


def _review_rows(settings: Settings) -> list[dict]:
    from kpi.review.summary import review_summary
    from kpi.store.db import make_engine

    engine = make_engine(settings)
    try:
        return review_summary(settings, engine)
    finally:
        engine.dispose()


def _write_folder(folder: Path, files: dict[str, bytes]) -> None:
    """Write every file to a temporary folder, then swap it in: never half an export."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.parent / f".{folder.name}.partial"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    for name, body in files.items():
        with open(temporary / name, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
    old = folder.parent / f".{folder.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    temporary.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
