"""Which package may import which: read from the source (ast), not from what happens to be
imported at run time, so that an import inside a function counts as much as one at the top.

kpi/ (the core: stores, catalogue, warehouse, indicators) imports none of the edges; the HTTP
edges, collector/ and dashboard/, import kpi/ but not each other; esco_kpi/ (the command line,
the server, the demo) is the only place that puts them together, and nothing imports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "kpi": {"collector", "dashboard", "esco_kpi"},
    "collector": {"dashboard", "esco_kpi"},
    "dashboard": {"collector", "esco_kpi"},
}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any level: `import a.b`,
    `from a.b import c` (also as a.b.c), relative imports resolved, and
    importlib.import_module / __import__ with a literal name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(package):
                    raise AssertionError(f"{path}:{node.lineno}: relative import beyond the root")
                base = package[:len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = (func.attr if isinstance(func, ast.Attribute)
                    else func.id if isinstance(func, ast.Name) else "")
            first = node.args[0]
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant) \
                    and isinstance(first.value, str):
                yield node.lineno, first.value


def violations(package: str, forbidden: set[str]) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if top in forbidden:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_it_may(package):
    assert (ROOT / package / "__init__.py").exists()
    assert violations(package, FORBIDDEN[package]) == []


def test_the_check_sees_imports_at_any_level(tmp_path):
    """The reader itself: top-level, function-level, relative and dynamic imports all count."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    source = package / "sub" / "mod.py"
    source.write_text(
        "import os\n"
        "from collector.app import create_app\n"
        "def late():\n"
        "    import dashboard.app\n"
        "    from esco_kpi import cli\n"
        "    from .. import sibling\n"
        "    from ..other import thing\n"
        "    return importlib.import_module('collector')\n")
    found = {module for _, module in imported_modules(source, tmp_path)}
    assert {"os", "collector.app", "dashboard.app", "esco_kpi", "esco_kpi.cli", "pkg",
            "pkg.sibling", "pkg.other", "pkg.other.thing", "collector"} <= found
