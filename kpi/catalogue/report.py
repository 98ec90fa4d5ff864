"""The catalogue commands' words: the report of a load, the table of loaded releases, the
outcome of a removal (plain text lines, for `esco-kpi catalogue ...` and `esco-kpi init`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kpi.catalogue.load import LoadSummary, RemoveSummary

TYPE_NAMES = {"occupation": "occupations", "isco": "ISCO groups", "skill": "skills",
              "skill_group": "skill groups"}


def concepts_text(by_type: Mapping[str, int]) -> str:
    """`3039 occupations, 619 ISCO groups, 13939 skills, 640 skill groups`."""
    return ", ".join(f"{n} {TYPE_NAMES.get(kind, kind)}" for kind, n in by_type.items()) or "none"


def _languages_text(languages: tuple[str, ...] | list[str]) -> str:
    return f"{len(languages)} language{'s' if len(languages) != 1 else ''} " \
           f"({', '.join(languages) or 'none'})"


def load_lines(summary: LoadSummary) -> list[str]:
    """The report of one load: what the release holds now, the files read and ignored, and
    the warnings."""
    entry = summary.report
    v = summary.version
    release = (f"{summary.concepts} concepts, {summary.labels} labels in "
               f"{_languages_text(summary.languages)}")
    took = f"from {summary.files} files in {summary.seconds:.1f} s"
    if summary.mode == "added":
        if summary.added_languages:
            what = f"languages {', '.join(summary.added_languages)}"
        else:
            what = "no new language"
        lines = [f"Added to ESCO {v}: {what}, {summary.labels_added:+d} labels {took}; "
                 f"the release has {release}."]
    else:
        verb = "Replaced" if summary.mode == "replaced" else "Loaded"
        lines = [f"{verb} ESCO {v}: {release} {took}."]
    lines.append(f"  concepts: {concepts_text(summary.by_type)}")
    if summary.collections:
        lines.append("  collections: " + ", ".join(
            f"{name} {n}" for name, n in summary.collections.items()))
    if summary.successors:
        lines.append(f"  replaced URIs: {summary.successors} code-style skill-group URIs "
                     f"(.../skill/S1.2) and their successors")
    several = len(entry.get("paths", [])) > 1
    files = entry.get("files", [])
    lines.append(f"  files read ({len(files)}):")
    for f in files:
        where = f"{f['from']}: " if several else ""
        version = f"  v{f['version']}" if f.get("version") else ""
        lines.append(f"    {where}{f['path']}  {f['language']}  {f['kind']}  "
                     f"{f['rows']} rows{version}")
    ignored = entry.get("ignored", [])
    if ignored:
        lines.append(f"  files ignored ({len(ignored)}):")
        for f in ignored:
            where = f"{f['from']}: " if several else ""
            lines.append(f"    {where}{f['path']}: {f['reason']}")
    for note in entry.get("notes", []):
        lines.append(f"  note: {note}")
    warnings = entry.get("warnings", [])
    if warnings:
        lines.append(f"  warnings ({len(warnings)}):")
        lines.extend(f"    warning: {w}" for w in warnings)
    return lines


def _short(languages: list[str]) -> str:
    if len(languages) <= 6:
        return ", ".join(languages) or "-"
    return f"{len(languages)} ({languages[0]} … {languages[-1]})"


def list_lines(releases: list[dict[str, Any]]) -> list[str]:
    """The loaded releases as a table, oldest first, the current one marked."""
    if not releases:
        return ["No ESCO release is loaded: `esco-kpi init` loads the bundled one, "
                "`esco-kpi catalogue load` another."]
    header = ["version", "concepts", "occupations", "ISCO groups", "skills", "skill groups",
              "labels", "languages", "loaded (UTC)", "loads", "from"]
    rows = []
    for r in releases:
        by_type = r["concepts_by_type"]
        rows.append([
            r["version"] + (" *" if r["current"] else ""), str(r["concepts"]),
            *(str(by_type.get(kind, 0)) for kind in ("occupation", "isco", "skill",
                                                      "skill_group")),
            str(r["labels"]), _short(r["languages"]),
            r["loaded_at"][:16].replace("T", " "), str(len(r["loads"]) or 1), r["source"],
        ])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    numeric = {1, 2, 3, 4, 5, 6, 9}

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if i in numeric else c.ljust(w)
                 for i, (c, w) in enumerate(zip(cells, widths, strict=False))]
        return "  ".join([*parts, cells[-1]]).rstrip()

    out = [line(header), *(line(row) for row in rows)]
    out.append("* the current release (the newest version number)")
    return out


def remove_lines(summary: RemoveSummary) -> list[str]:
    """What a removal did, and what happens to the events it put back into quarantine."""
    lines = [f"Removed ESCO {summary.version}: {summary.concepts} concepts, "
             f"{summary.labels} labels."]
    if summary.requarantined:
        lines.append(
            f"{summary.requarantined} accepted events went back to quarantine: no remaining "
            f"release knows their concept. They count again after `esco-kpi quarantine "
            f"replay` once a loaded release knows it.")
    else:
        lines.append("No accepted event went back to quarantine: the remaining releases know "
                     "every concept they name.")
    return lines
