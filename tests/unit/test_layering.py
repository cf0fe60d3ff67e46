"""The dependency rule of docs/architecture.md: the core imports no framework.

Only ``flows/`` imports prefect; only ``w365etl/adapters/`` imports sqlalchemy, openpyxl or
httpx; the CLI entrypoint may import flows (lazily) but nothing in the library imports the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def library_files(*, adapters: bool) -> list[Path]:
    files = [path for path in (ROOT / "w365etl").rglob("*.py") if path.name != "cli.py"]
    inside = [path for path in files if "adapters" in path.relative_to(ROOT).parts]
    return inside if adapters else [path for path in files if path not in inside]


def test_the_core_imports_no_framework():
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_modules(path) & {"prefect", "httpx", "openpyxl", "sqlalchemy", "flows"})
        for path in library_files(adapters=False)
    }
    assert {path: names for path, names in offenders.items() if names} == {}
    assert len(offenders) > 10  # the walk really found the library


def test_only_flows_import_prefect():
    for path in library_files(adapters=True) + list((ROOT / "schemas").rglob("*.py")):
        assert "prefect" not in imported_modules(path), path
    assert any("prefect" in imported_modules(path) for path in (ROOT / "flows").rglob("*.py"))
