"""Two real ESCO releases, cut small (tests/data/releases, see its README): v1.0.8 and v1.2.0.

`release_path("1.0.8")` is the whole folder; `release_path("1.0.8", "en", "fr", into=tmp)` copies
only the files of those languages, for tests that load one language's download at a time.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

RELEASES = Path(__file__).resolve().parent / "data" / "releases"
OLDER, NEWER = "1.0.8", "1.2.0"
# The languages each folder has files for.
LANGUAGES = {OLDER: ("de", "en", "fr", "nl"), NEWER: ("de", "en")}

_LANGUAGE = re.compile(r"_([a-z]{2})\.csv(\.gz)?$")


def release_files(version: str, *languages: str) -> list[Path]:
    """The release's CSV files, all of them or only those of `languages`, sorted by name."""
    folder = RELEASES / f"v{version}"
    if not folder.is_dir():
        raise ValueError(f"no test release {version} (have: {', '.join(sorted(LANGUAGES))})")
    unknown = set(languages) - set(LANGUAGES[version])
    if unknown:
        raise ValueError(f"test release {version} has no files in {', '.join(sorted(unknown))}")
    files = sorted(p for p in folder.iterdir() if _LANGUAGE.search(p.name))
    if languages:
        files = [p for p in files if _LANGUAGE.search(p.name)[1] in languages]
    return files


def release_path(version: str, *languages: str, into: Path | None = None) -> Path:
    """The folder of a test release; with `languages`, a copy holding only those languages'
    files, made in `into` (a new temporary folder if None)."""
    if not languages:
        release_files(version)  # checks the version
        return RELEASES / f"v{version}"
    dest = Path(into) if into is not None else Path(tempfile.mkdtemp(prefix="esco-release-"))
    dest.mkdir(parents=True, exist_ok=True)
    for file in release_files(version, *languages):
        shutil.copy(file, dest / file.name)
    return dest
