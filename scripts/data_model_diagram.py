"""The data model diagram of ``docs/data-model.md``, generated from the models (``tables.py``).

    .venv/bin/python scripts/data_model_diagram.py          # rewrite the diagram in the doc
    .venv/bin/python scripts/data_model_diagram.py --check  # exit 1 if the doc is out of date

The diagram is a Mermaid ``erDiagram`` (GitHub and most Markdown viewers draw it): every table
with its columns — type, ``PK``/``FK``/``UK`` (a one-column unique constraint), and a note for
nullable and indexed columns — and one relationship per foreign key: ``||`` / ``|o`` on the
parent's side for a required / nullable key, ``o{`` / ``o|`` on the child's side for many / at
most one (a unique foreign key). ``tests/unit/test_data_model_doc.py`` fails when the checked-in
diagram and the models disagree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import Boolean, Date, DateTime, Integer, MetaData, Numeric, String, Text, UniqueConstraint

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "data-model.md"
BEGIN = "<!-- BEGIN GENERATED: scripts/data_model_diagram.py — do not edit by hand -->"
END = "<!-- END GENERATED -->"


def _type_name(column) -> str:
    from w365etl.adapters.tables import ExactDecimal

    kind = column.type
    if isinstance(kind, ExactDecimal):
        return "decimal"  # exact: NUMERIC(38,10) on PostgreSQL, canonical text on SQLite
    if isinstance(kind, Boolean):
        return "boolean"
    if isinstance(kind, DateTime):
        return "timestamptz" if kind.timezone else "timestamp"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, Integer):
        return "integer"
    if isinstance(kind, Numeric):
        return f"numeric({kind.precision},{kind.scale})"
    if isinstance(kind, Text):
        return "text"
    if isinstance(kind, String):
        return f"varchar({kind.length})" if kind.length else "varchar"
    return type(kind).__name__.lower()


def _unique_columns(table) -> set[str]:
    single = {column.name for column in table.columns if column.unique}
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and len(constraint.columns) == 1:
            single.update(column.name for column in constraint.columns)
    for index in table.indexes:
        if index.unique and len(index.columns) == 1:
            single.update(column.name for column in index.columns)
    return single


def _indexed_columns(table) -> set[str]:
    indexed = {column.name for column in table.columns if column.index}
    for index in table.indexes:
        indexed.update(column.name for column in index.columns)
    return indexed


def mermaid_er_diagram(metadata: MetaData) -> str:
    """The ``erDiagram`` text of every table of ``metadata`` (tables and columns in model order)."""
    lines = ["erDiagram"]
    relationships = []
    for table in metadata.sorted_tables:
        unique, indexed = _unique_columns(table), _indexed_columns(table)
        lines.append(f"    {table.name} {{")
        for column in table.columns:
            keys = []
            if column.primary_key:
                keys.append("PK")
            if column.foreign_keys:
                keys.append("FK")
            if column.name in unique and not column.primary_key:
                keys.append("UK")
            notes = []
            if column.nullable and not column.primary_key:
                notes.append("nullable")
            if column.name in indexed and not (column.primary_key or column.name in unique):
                notes.append("indexed")
            entry = f"        {_type_name(column)} {column.name}"
            if keys:
                entry += " " + ", ".join(keys)
            if notes:
                entry += f' "{", ".join(notes)}"'
            lines.append(entry)
        lines.append("    }")
        for column in table.columns:
            for key in sorted(column.foreign_keys, key=lambda item: item.target_fullname):
                parent = "|o" if column.nullable else "||"
                child = "o|" if column.name in unique else "o{"
                relationships.append(f"    {key.column.table.name} {parent}--{child} {table.name} : {column.name}")
    return "\n".join(lines + sorted(relationships)) + "\n"


def current_block() -> str:
    from w365etl.adapters.tables import Base

    return f"{BEGIN}\n```mermaid\n{mermaid_er_diagram(Base.metadata)}```\n{END}"


def rewritten(document: str) -> str:
    """``document`` with its generated block replaced by the diagram of the current models."""
    start, end = document.index(BEGIN), document.index(END) + len(END)
    return document[:start] + current_block() + document[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/data-model.md is out of date")
    options = parser.parse_args(argv)
    document = DOC.read_text(encoding="utf-8")
    fresh = rewritten(document)
    if options.check:
        if fresh != document:
            print(f"{DOC.relative_to(ROOT)} is out of date: run .venv/bin/python scripts/data_model_diagram.py")
            return 1
        print(f"{DOC.relative_to(ROOT)} matches the models")
        return 0
    if fresh != document:
        DOC.write_text(fresh, encoding="utf-8")
        print(f"rewrote the diagram in {DOC.relative_to(ROOT)}")
    else:
        print(f"{DOC.relative_to(ROOT)} already matches the models")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
