"""Reading a test database directly: what a run left behind."""

from __future__ import annotations

from sqlalchemy import create_engine, func, select


def rows(db_url: str, statement) -> list:
    engine = create_engine(db_url)
    with engine.connect() as connection:
        found = connection.execute(statement).all()
    engine.dispose()
    return found


def count(db_url: str, table) -> int:
    return rows(db_url, select(func.count()).select_from(table))[0][0]
