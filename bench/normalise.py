"""normalise_label over the bundled catalogue's labels, against its definition written out.

    python bench/normalise.py

The baseline is the label normalisation as its docstring defines it, one character at a time
in Python (what kpi.catalogue.labels did before); the measured one is kpi.catalogue.labels'
translate table. Both run on every label of the bundled ESCO release in the same process, three
rounds each (the best is kept), and must give the same keys. Appends to bench/RESULTS.md unless
--no-results.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kpi.catalogue.files import read_release  # noqa: E402
from kpi.catalogue.labels import normalise_label  # noqa: E402
from kpi.catalogue.load import BUNDLED_VERSION, bundled_path  # noqa: E402

HERE = Path(__file__).resolve().parent


def by_definition(text: str) -> str:
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    chars = [ch if ch.isalnum() else " " for ch in folded
             if not unicodedata.category(ch).startswith("M")]
    return " ".join("".join(chars).split())


def best_of(fn: Callable[[str], str], labels: list[str]) -> tuple[float, list[str]]:
    times, out = [], []
    for _ in range(3):
        started = time.perf_counter()
        out = [fn(text) for text in labels]
        times.append(time.perf_counter() - started)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-results", action="store_true")
    args = parser.parse_args()
    labels = [label for _, _, _, label in read_release(bundled_path(), BUNDLED_VERSION).labels]
    base, expected = best_of(by_definition, labels)
    now, got = best_of(normalise_label, labels)
    if got != expected:
        sys.exit("normalise_label disagrees with its definition")
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent,
                         capture_output=True, text=True).stdout.strip()
    text = (f"\n## Label normalisation ({datetime.now():%Y-%m-%d})\n\n"
            f"`python bench/normalise.py` — git {git}; {platform.machine()}, "
            f"{platform.python_version()}. {len(labels):,} labels of the bundled release, "
            f"best of 3: by the definition, a character at a time {base:.2f} s; "
            f"normalise_label (translate table) {now:.2f} s; **x{base / now:.1f}**, same keys.\n")
    print(text)
    if not args.no_results:
        with (HERE / "RESULTS.md").open("a", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
