"""Alembic environment of w365etl: the models' metadata, the connection or URL given in code.

There is no ``alembic.ini``: :func:`w365etl.adapters.migrations.alembic_config` builds the
``Config`` and passes either an open ``connection`` (already inside the transaction and lock
that :func:`~w365etl.adapters.migrations.upgrade` took) or a ``url`` in ``config.attributes``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from w365etl.adapters.tables import Base

config = context.config
target_metadata = Base.metadata


def _configure(**options) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: later revisions use batch mode (copy and move)
        render_as_batch=True,
        **options,
    )


def run_migrations_offline() -> None:
    """``--sql`` mode: the DDL as text, for a DBA to review or run."""
    _configure(url=config.attributes.get("url") or config.get_main_option("sqlalchemy.url"),
               literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection) -> None:
    # the whole upgrade is one transaction on both backends (SQLite DDL is transactional too)
    _configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = create_engine(config.attributes["url"], poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
