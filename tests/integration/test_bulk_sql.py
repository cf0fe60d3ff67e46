"""Bulk writes (``adapters/bulk_sql.py``) store exactly what SQLAlchemy would, on both backends.

The store's large writes skip SQLAlchemy's per-row bind processing; these tests write the same
frame both ways into twin tables and compare what the database holds, value for value (exact
decimals as SPEC §5 money, dates, timestamps, booleans, NULLs), and check the key reservation
and the guarded update the store relies on for exactly-once (R6: a provisioned line is never
updated again).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import Boolean, Column, Date, DateTime, Integer, MetaData, String, Table, insert

from w365etl.adapters import bulk_sql
from w365etl.adapters import tables as t
from w365etl.adapters.store_sql import SqlStore, create_store_engine
from w365etl.amounts import MONEY_DTYPE, decimals_from_text

STAMP = dt.datetime(2026, 11, 29, 18, 30, 15, 123456, tzinfo=dt.timezone.utc)


def _twin_tables(metadata: MetaData) -> tuple[Table, Table]:
    def table(name: str) -> Table:
        return Table(name, metadata,
                     Column("row_pk", Integer, primary_key=True),
                     Column("label", String(40)),
                     Column("amount", t.ExactDecimal()),
                     Column("as_of_date", Date),
                     Column("created_at", DateTime(timezone=True)),
                     Column("is_done", Boolean),
                     Column("kind", String(20)),
                     Column("note", String(40)))
    return table("bulk_twin_fast"), table("bulk_twin_core")


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "row_pk": [1, 2, 3],
        "label": pd.Series(["Contoso", None, "Ünïcödé ‘quoted’ = +1"], dtype="string"),
        "amount": decimals_from_text(pd.Series(["1299.5", None, "0.000001"], dtype=object), MONEY_DTYPE.pyarrow_dtype),
        "as_of_date": [dt.date(2026, 11, 29), None, dt.date(2026, 1, 2)],
        "created_at": [STAMP, STAMP, None],
        "is_done": pd.Series([True, False, None], dtype="boolean"),
        # as a partitioned run gathers its exceptions (report/merge.py): categories, Arrow text
        "kind": pd.Series(["held", None, "held"], dtype="category"),
        "note": pd.Series([None, "SO-1", "ünï"], dtype="string[pyarrow]"),
    })


def test_a_bulk_insert_stores_what_sqlalchemy_stores(db_url):
    SqlStore(db_url).dispose()  # create / check the schema as a run would
    engine = create_store_engine(db_url)
    metadata = MetaData()
    fast, core = _twin_tables(metadata)
    metadata.create_all(engine)
    frame = _frame()
    try:
        with engine.begin() as connection:
            assert bulk_sql.insert_frame(connection, fast, frame) == 3
            records = frame.astype(object).where(frame.notna(), None).to_dict("records")
            for record in records:
                record["amount"] = None if record["amount"] is None else str(record["amount"])
            connection.execute(insert(core), records)
        with engine.connect() as connection:
            # read through the driver: the stored values themselves, not SQLAlchemy's reading of them
            stored_fast = connection.exec_driver_sql(f"SELECT * FROM {fast.name} ORDER BY row_pk").fetchall()
            stored_core = connection.exec_driver_sql(f"SELECT * FROM {core.name} ORDER BY row_pk").fetchall()
        assert stored_fast == stored_core
        assert stored_fast[1][1:6] == (None, None, None, stored_core[1][4], 0 if engine.dialect.name == "sqlite" else False)
        assert [row[6:] for row in stored_fast] == [("held", None), (None, "SO-1"), ("held", "ünï")]
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def _dates(days: list, dtype: str) -> pd.Series:
    if dtype.endswith("in chunks"):  # as pd.concat leaves an Arrow column: several chunks
        half = len(days) // 2
        column = pd.concat([_dates(days[:half], "date32[pyarrow]"), _dates(days[half:], "date32[pyarrow]")],
                           ignore_index=True)
        assert column.array._pa_array.num_chunks == 2
        return column
    return pd.Series(days, dtype=object).astype(dtype)


@pytest.mark.parametrize("date_dtype", ["object", "date32[pyarrow]", "date32[pyarrow], in chunks"])
def test_dates_and_timestamps_are_stored_as_sqlalchemy_stores_them_whatever_the_frame_dtype(db_url, date_dtype):
    """Dates and timestamps are bound once per distinct value and picked by code: repeated,
    distinct and missing values, in the dtypes the stages hand over (Python dates, Arrow
    dates, nanosecond timestamps with a zone), end up exactly as SQLAlchemy stores them."""
    SqlStore(db_url).dispose()
    engine = create_store_engine(db_url)
    metadata = MetaData()
    fast, core = _twin_tables(metadata)
    metadata.create_all(engine)
    days = [dt.date(2026, 11, 29), None, dt.date(2026, 1, 2), dt.date(2026, 11, 29), dt.date(1999, 12, 31), None]
    stamps = [STAMP, None, STAMP + dt.timedelta(microseconds=1), STAMP, None, STAMP - dt.timedelta(days=400)]
    frame = pd.DataFrame({
        "row_pk": range(1, len(days) + 1),
        "as_of_date": _dates(days, date_dtype),
        "created_at": pd.Series(pd.to_datetime(stamps, utc=True)).astype("datetime64[ns, UTC]"),
    })
    try:
        with engine.begin() as connection:
            assert bulk_sql.insert_frame(connection, fast, frame) == len(days)
            connection.execute(insert(core), [{"row_pk": pk, "as_of_date": day, "created_at": stamp}
                                              for pk, day, stamp in zip(frame["row_pk"], days, stamps)])
        with engine.connect() as connection:
            stored_fast = connection.exec_driver_sql(
                f"SELECT row_pk, as_of_date, created_at FROM {fast.name} ORDER BY row_pk").fetchall()
            stored_core = connection.exec_driver_sql(
                f"SELECT row_pk, as_of_date, created_at FROM {core.name} ORDER BY row_pk").fetchall()
        assert stored_fast == stored_core
        assert [row[1] is None for row in stored_fast] == [day is None for day in days]
        assert len({row[2] for row in stored_fast if row[2] is not None}) == 3
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def test_reserved_keys_follow_the_stored_ones_and_the_guarded_update_skips_provisioned_lines(db_url):
    SqlStore(db_url).dispose()
    engine = create_store_engine(db_url)
    lines = t.Line.__table__
    base = {"line_key": "k", "status": "planned", "content_signature": "s", "updated_at": STAMP}
    with engine.begin() as connection:
        first = bulk_sql.reserve_primary_keys(connection, lines, 3)
        bulk_sql.insert_frame(connection, lines, pd.DataFrame([{**base, "line_pk": pk} for pk in first]))
        second = bulk_sql.reserve_primary_keys(connection, lines, 2)
        connection.execute(lines.update().where(lines.c.line_pk == first[0]).values(status="provisioned"))
        sent = bulk_sql.update_frame(connection, lines,
                                     pd.DataFrame({"line_pk": first, "status": ["failed"] * 3}),
                                     key="line_pk", where_sql="status <> 'provisioned'")
        statuses = dict(connection.exec_driver_sql("SELECT line_pk, status FROM lines").fetchall())
    engine.dispose()
    assert len(set(first)) == 3 and min(second) > max(first) and len(set(second)) == 2
    assert sent == 3
    assert statuses == {first[0]: "provisioned", first[1]: "failed", first[2]: "failed"}


@pytest.mark.parametrize("rows", [0, 1, bulk_sql.CHUNK_ROWS + 7])
def test_every_row_is_written_across_chunks(tmp_path, rows):
    engine = create_store_engine(f"sqlite:///{tmp_path / 'chunks.sqlite'}")
    metadata = MetaData()
    table = Table("chunked", metadata, Column("row_pk", Integer, primary_key=True), Column("label", String(20)))
    metadata.create_all(engine)
    frame = pd.DataFrame({"row_pk": range(rows), "label": pd.Series([f"r{i}" for i in range(rows)], dtype="string")})
    with engine.begin() as connection:
        assert bulk_sql.insert_frame(connection, table, frame) == rows
        stored = connection.exec_driver_sql("SELECT count(*), count(DISTINCT label) FROM chunked").one()
    engine.dispose()
    assert tuple(stored) == (rows, rows)


def test_a_column_empty_in_one_chunk_and_filled_in_another_is_stored_as_given(tmp_path):
    """A column empty in a whole chunk is left out of that chunk's statement: the rows hold
    NULL there, and the next chunk's values are stored (also through an upsert)."""
    engine = create_store_engine(f"sqlite:///{tmp_path / 'sparse.sqlite'}")
    metadata = MetaData()
    table = Table("sparse", metadata, Column("row_pk", Integer, primary_key=True), Column("label", String(20)),
                  Column("error", String(20)))
    metadata.create_all(engine)
    rows = bulk_sql.CHUNK_ROWS + 3
    errors = pd.Series([None] * bulk_sql.CHUNK_ROWS + ["late", None, "last"], dtype="string")
    frame = pd.DataFrame({"row_pk": range(rows), "label": pd.Series(["x"] * rows, dtype="string"), "error": errors})
    with engine.begin() as connection:
        assert bulk_sql.insert_frame(connection, table, frame) == rows
        # an upsert whose first chunk has no error keeps what is stored (coalesce with NULL)
        again = frame.assign(label="y", error=pd.Series([None] * rows, dtype="string"))
        bulk_sql.insert_frame(connection, table, again, conflict_columns=["row_pk"],
                              update_sql="label = excluded.label, error = coalesce(excluded.error, sparse.error)")
        stored = connection.exec_driver_sql("SELECT row_pk, label, error FROM sparse ORDER BY row_pk").fetchall()
    engine.dispose()
    assert len(stored) == rows and {label for _, label, _ in stored} == {"y"}
    assert [error for _, _, error in stored] == [None] * bulk_sql.CHUNK_ROWS + ["late", None, "last"]


def test_an_update_setting_the_same_values_on_every_row_is_set_based_and_still_guarded(db_url):
    """Every row setting the same values goes through one UPDATE over a temporary table of
    keys: each keyed row gets exactly those values, a provisioned line is still never updated
    (R6), rows not named are untouched — the same as the row-by-row path gives."""
    SqlStore(db_url).dispose()
    engine = create_store_engine(db_url)
    lines = t.Line.__table__
    base = {"line_key": "k", "status": "planned", "content_signature": "s", "updated_at": STAMP}
    later = STAMP + dt.timedelta(hours=1)
    with engine.begin() as connection:
        pks = bulk_sql.reserve_primary_keys(connection, lines, 6)
        bulk_sql.insert_frame(connection, lines, pd.DataFrame([{**base, "line_pk": pk} for pk in pks]))
        connection.execute(lines.update().where(lines.c.line_pk == pks[0]).values(status="provisioned"))
        named = pks[:2] + pks[3:5]  # pks[2] and pks[5] are not named
        done = pd.DataFrame({"line_pk": named, "status": "provisioned", "provisioned_run_id": "run-2",
                             "error_code": pd.Series([None] * 4, dtype="string"), "updated_at": later})
        assert bulk_sql.update_frame(connection, lines, done, key="line_pk", where_sql="status = 'planned'") == 4
        stored = {pk: (status, run, error) for pk, status, run, error in connection.exec_driver_sql(
            "SELECT line_pk, status, provisioned_run_id, error_code FROM lines").fetchall()}
        stamps = dict(connection.exec_driver_sql("SELECT line_pk, updated_at FROM lines").fetchall())
    engine.dispose()
    assert stored[pks[0]] == ("provisioned", None, None)  # guarded: provisioned before, not touched
    assert all(stored[pk] == ("provisioned", "run-2", None) for pk in (pks[1], pks[3], pks[4]))
    assert stored[pks[2]] == stored[pks[5]] == ("planned", None, None)
    assert stamps[pks[1]] == stamps[pks[3]] != stamps[pks[2]]  # the timestamp bound once, as the column stores it
