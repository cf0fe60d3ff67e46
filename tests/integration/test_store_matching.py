"""R6 (exactly once): the store's lookup of a run's identifiers decides every row as the rule does
on the whole identifier table.

``SqlStore._matching_identifiers`` reads only part of what is stored: the run's identifiers that
are stored, and all the levels only of lines found for rows not settled by their strongest
identifier. Property: for any stored lines (any levels, several identifiers a level) and any run
rows (any identifiers, shared or not), ``keys.match_stored_lines`` on what the store read gives
the same ``line_pk`` per row as on every stored identifier, the store hands back every stored
line that shares an identifier with the run (with its status), and it names every identifier of
the run that is stored (those are not sent again when the plan is stored). Real SQLite and
PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.conftest import _reset_postgres
from w365etl.adapters.store_sql import SqlStore
from w365etl.domain.keys import LEVELS, match_stored_lines

POOL = 4  # identifiers per level: small, so rows and lines share them often
SEP = "\x1f"
LINES = range(1, 7)


def _identifier(level: str, number: int) -> str:
    return f"{level}{SEP}{number}"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('matching') / 'w365etl.sqlite'}"
    else:
        url = request.getfixturevalue("pg_server_url")
        _reset_postgres(url)
    store = SqlStore(url)
    yield store
    store.dispose()


#: who owns each identifier of the pools: a stored line, or nobody (one identifier names one line)
owners = st.fixed_dictionaries({(level, number): st.one_of(st.none(), st.sampled_from(list(LINES)))
                                for level in LEVELS for number in range(POOL)})
#: a run row: per level an identifier of the pool or none (at least one, as every real row has)
run_row = st.fixed_dictionaries({level: st.one_of(st.none(), st.integers(0, POOL - 1)) for level in LEVELS}).filter(
    lambda row: any(value is not None for value in row.values()))


def _store_lines(store: SqlStore, owned: dict) -> pd.DataFrame:
    """Replace the stored lines and identifiers with these; return every stored identifier."""
    identifiers = pd.DataFrame([{"line_pk": owner, "level": level, "identifier": _identifier(level, number)}
                                for (level, number), owner in owned.items() if owner is not None],
                               columns=["line_pk", "level", "identifier"])
    now = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM line_identifiers"))
        connection.execute(text("DELETE FROM lines"))
        connection.execute(text(
            "INSERT INTO lines (line_pk, line_key, status, content_signature, updated_at) "
            "VALUES (:pk, :key, :status, :signature, :now)"),
            [{"pk": pk, "key": f"line {pk}", "status": "provisioned" if pk % 2 else "held",
              "signature": f"P{pk}|1|10", "now": now} for pk in LINES])
        if len(identifiers):
            connection.execute(text("INSERT INTO line_identifiers (identifier, line_pk, level) "
                                    "VALUES (:identifier, :line_pk, :level)"), identifiers.to_dict("records"))
    return identifiers.astype({"line_pk": "int64", "level": "string", "identifier": "string"})


def _run_lines(rows: list[dict]) -> pd.DataFrame:
    index = pd.RangeIndex(10, 10 + len(rows))  # not 0…n-1: the store must not rely on it
    return pd.DataFrame({
        f"key_{level}": pd.Series([None if row[level] is None else _identifier(level, row[level]) for row in rows],
                                  dtype="string", index=index)
        for level in LEVELS
    })


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(owned=owners, rows=st.lists(run_row, min_size=1, max_size=8))
def test_the_stores_lookup_matches_as_the_rule_does_on_every_stored_identifier(store, owned, rows):
    every_identifier = _store_lines(store, owned)
    lines = _run_lines(rows)
    with store.engine.begin() as connection:
        found, stored = store._matching_identifiers(connection, lines, with_lines=True)

    expected = match_stored_lines(lines, every_identifier)
    got = match_stored_lines(lines, found) if not found.empty else pd.Series(pd.NA, index=lines.index, dtype="Int64")
    pd.testing.assert_series_equal(got, expected, check_names=False)

    run_identifiers = set(pd.concat([lines[f"key_{level}"] for level in LEVELS]).dropna())
    sharing = every_identifier[every_identifier["identifier"].isin(run_identifiers)]
    assert set(stored["line_pk"]) == set(sharing["line_pk"])
    assert all(stored["status"] == stored["line_pk"].map(lambda pk: "provisioned" if pk % 2 else "held"))
    named = set(found["identifier"].dropna()) if not found.empty else set()
    assert named == set(sharing["identifier"])
