"""Alembic revisions of the w365etl schema (a package so that they ship with w365etl)."""
