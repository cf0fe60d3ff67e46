"""Bulk writes of the store: a frame becomes driver rows column by column, one executemany per chunk.

Why not ``connection.execute(insert(table), list_of_dicts)``: SQLAlchemy then builds a dict and
runs each column's bind processor per row (≈ 40 000 rows/s here); a run of a million lines
writes several million rows. Here each column is converted once — exact decimals to canonical
text, dates and timestamps through the column type's own bind processor applied to the
*distinct* values only, everything else through Arrow (NA → ``None``) — and the rows go to the
driver's ``executemany`` as tuples. What is stored is exactly what SQLAlchemy would have stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Boolean, Column, Date, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.engine import Connection

from w365etl.adapters.tables import ExactDecimal
from w365etl.amounts import decimals_to_text

CHUNK_ROWS = 50_000


def driver_column(values: pd.Series, column_type, dialect) -> list:
    """One column as the driver takes it (``None`` for NA)."""
    if isinstance(column_type, ExactDecimal):
        if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_decimal(values.dtype.pyarrow_dtype):
            values = decimals_to_text(values)
        return pa.array(values.astype("string"), from_pandas=True).to_pylist()
    if isinstance(column_type, (Date, DateTime)):
        # the dialect's own type (SQLite's DATETIME stores naive text), as SQLAlchemy would bind it
        # each distinct value becomes a Python object and goes through the processor once, then
        # is picked by its code: a run stamps a million rows with a handful of timestamps
        processor = column_type.dialect_impl(dialect).bind_processor(dialect)
        arrow = pa.array(values, from_pandas=True)
        if isinstance(arrow, pa.ChunkedArray):  # an Arrow-backed column after a concat
            arrow = arrow.combine_chunks()
        encoded = pc.dictionary_encode(arrow)
        distinct = encoded.dictionary.to_pylist()
        choices = np.array([*(distinct if processor is None else map(processor, distinct)), None], dtype=object)
        return choices[pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)].tolist()
    if isinstance(column_type, Boolean):
        # sqlite3 stores a Python bool as 1/0, as SQLAlchemy's Boolean does
        return pa.array(values.astype("boolean"), from_pandas=True).to_pylist()
    if isinstance(values.dtype, pd.CategoricalDtype):
        # each category converted once, then picked by code (NA's code is -1 → None)
        choices = np.array([*driver_column(pd.Series(values.cat.categories), column_type, dialect), None], dtype=object)
        return choices[values.cat.codes.to_numpy()].tolist()
    if pd.api.types.is_integer_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return pa.array(values, from_pandas=True).to_pylist()
    if values.dtype == object:
        # Python objects (ints from a dict, strings): keep them, NA → None
        return values.where(values.notna(), None).tolist()
    return pa.array(values, from_pandas=True).to_pylist()


def driver_rows(connection: Connection, table: Table, frame: pd.DataFrame) -> list[tuple]:
    columns = [driver_column(frame[name], table.c[name].type, connection.dialect) for name in frame.columns]
    return list(zip(*columns)) if columns else []


def _placeholder(connection: Connection) -> str:
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"


def _names(connection: Connection, names: Iterable[str]) -> list[str]:
    quote = connection.dialect.identifier_preparer.quote
    return [quote(name) for name in names]


def _row_chunks(connection: Connection, table: Table, frame: pd.DataFrame) -> Iterable[list[tuple]]:
    """Driver rows a chunk at a time: Python objects exist for one chunk only (a million rows
    of tuples would cost gigabytes)."""
    for start in range(0, len(frame), CHUNK_ROWS):
        yield driver_rows(connection, table, frame.iloc[start:start + CHUNK_ROWS])


def insert_frame(connection: Connection, table: Table, frame: pd.DataFrame, *,
                 conflict_columns: Sequence[str] | None = None, update_sql: str | None = None) -> int:
    """INSERT every row of ``frame`` (its columns are the table's); with ``conflict_columns``,
    ``ON CONFLICT (…) DO NOTHING`` or ``DO UPDATE SET <update_sql>``. Returns the rows sent.

    A nullable column with no server default that is empty in a whole chunk is left out of
    that chunk's statement: the database stores the same NULL, and nothing is converted or
    bound for it (the lines of a plan carry several columns only a provider's answer fills)."""
    if frame.empty:
        return 0
    conflict = ""
    if conflict_columns:
        target = ", ".join(_names(connection, conflict_columns))
        conflict = f" ON CONFLICT ({target}) " + (f"DO UPDATE SET {update_sql}" if update_sql else "DO NOTHING")
    may_omit = [name for name in frame.columns
                if table.c[name].nullable and table.c[name].server_default is None and not table.c[name].primary_key]
    for start in range(0, len(frame), CHUNK_ROWS):
        chunk = frame.iloc[start:start + CHUNK_ROWS]
        empty = [name for name in may_omit if not chunk[name].notna().any()]
        if empty and len(empty) < len(chunk.columns):
            chunk = chunk.drop(columns=empty)
        names = _names(connection, chunk.columns)
        statement = (f"INSERT INTO {connection.dialect.identifier_preparer.format_table(table)} "
                     f"({', '.join(names)}) VALUES ({', '.join([_placeholder(connection)] * len(names))})")
        connection.exec_driver_sql(statement + conflict, driver_rows(connection, table, chunk))
    return len(frame)


def update_frame(connection: Connection, table: Table, frame: pd.DataFrame, *, key: str,
                 where_sql: str = "") -> int:
    """UPDATE ``table`` SET every other column of ``frame`` WHERE ``key`` = the row's key
    (plus ``where_sql``, e.g. a status guard). Returns the rows sent.

    When every row sets the same values (a provider's plain "done" for half a million lines)
    and the key is an integer, the keys go to a temporary table and one UPDATE sets the values
    once: the same rows change to the same values, without a bound statement per row."""
    if frame.empty:
        return 0
    placeholder = _placeholder(connection)
    values = [name for name in frame.columns if name != key]
    assignments = ", ".join(f"{quoted} = {placeholder}" for quoted in _names(connection, values))
    guard = f" AND {where_sql}" if where_sql else ""
    target = connection.dialect.identifier_preparer.format_table(table)
    if (len(frame) > 1 and pd.api.types.is_integer_dtype(frame[key].dtype) and frame[key].notna().all()
            and all(frame[name].nunique(dropna=False) == 1 for name in values)):
        keys = temporary_table(connection, "tmp_update_keys",
                               pd.DataFrame({"key_value": np.sort(frame[key].astype("int64").unique())}))
        first = frame.iloc[:1]
        constants = tuple(driver_column(first[name], table.c[name].type, connection.dialect)[0] for name in values)
        connection.exec_driver_sql(f"UPDATE {target} SET {assignments} WHERE {_names(connection, [key])[0]} IN "
                                   f"(SELECT key_value FROM tmp_update_keys){guard}", constants)
        keys.drop(connection)
        return len(frame)
    statement = f"UPDATE {target} SET {assignments} WHERE {_names(connection, [key])[0]} = {placeholder}{guard}"
    for chunk in _row_chunks(connection, table, frame[values + [key]]):
        connection.exec_driver_sql(statement, chunk)
    return len(frame)


def temporary_table(connection: Connection, name: str, frame: pd.DataFrame, *, is_keyed: bool = True) -> Table:
    """A temporary table ``name`` holding ``frame``'s rows (emptied first if this connection
    already has it): integer columns as INTEGER, the others as TEXT, the first column the
    primary key (``is_keyed``; else no key: the rows stay in the order given, for a scan that
    walks them in that order). Drop it with ``.drop(connection)`` when done."""
    columns = [Column(column, Integer if pd.api.types.is_integer_dtype(frame[column].dtype) else Text,
                      primary_key=is_keyed and position == 0, autoincrement=False)
               for position, column in enumerate(frame.columns)]
    table = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])
    table.create(connection, checkfirst=True)
    connection.execute(table.delete())
    insert_frame(connection, table, frame)
    return table


def reserve_primary_keys(connection: Connection, table: Table, count: int) -> list[int]:
    """``count`` new primary key values for ``table``, taken before the rows are inserted (so a
    bulk insert needs no RETURNING). PostgreSQL draws them from the column's sequence (safe with
    concurrent writers); SQLite continues after the largest key — its transactions start with
    ``BEGIN IMMEDIATE``, so no other writer can take the same values meanwhile."""
    if count <= 0:
        return []
    key = table.primary_key.columns.values()[0]
    if connection.dialect.name == "postgresql":
        found = connection.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', '{key.name}')) FROM generate_series(1, {int(count)})")
        return [int(value) for (value,) in found]
    largest = connection.exec_driver_sql(
        f"SELECT coalesce(max({_names(connection, [key.name])[0]}), 0) FROM {table.name}").scalar_one()
    return list(range(int(largest) + 1, int(largest) + 1 + count))
