"""The SQL store on both backends: exact amounts, reference upserts, a run's state read back."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import insert, select, text

from w365etl.adapters import tables as t
from w365etl.adapters.store_sql import SqlStore
from w365etl.reference import merge_provider_accounts


def accounts(rows):
    return pd.DataFrame(rows, columns=["customer_name", "customer_id", "provider_customer_id"]).assign(
        provider_code="partner_center")


def test_money_and_quantities_round_trip_exactly_and_never_as_floats(db_url):
    store = SqlStore(db_url)
    values = ["0.1", "1299.99", "0.00001", "123456789012.123456", "-3"]
    with store.engine.begin() as connection:
        connection.execute(insert(t.Customer), [{"customer_name": "C", "name_key": "c"}])
        connection.execute(insert(t.BillingContract), [{
            "contract_number": "BC-1", "contract_name": "C", "customer_pk": 1, "contract_type": "Recurring",
            "contract_product_type": "CSP", "billing_frequency": "Monthly", "currency_code": "USD",
            "start_date": dt.date(2026, 11, 29), "end_date": dt.date(2099, 12, 31), "payment_terms": "Net 30",
            "process_refunds": "Use Global Setting", "created_run_id": "r"}])
        connection.execute(insert(t.Line), [{"line_key": f"k{i}", "status": "provisioned", "content_signature": "s",
                                             "quantity": value} for i, value in enumerate(values)])
        read = connection.execute(select(t.Line.quantity).order_by(t.Line.line_pk)).scalars().all()
        column_type = connection.execute(text(
            "select typeof(quantity) from lines limit 1" if store.dialect == "sqlite"
            else "select pg_typeof(quantity)::text from lines limit 1")).scalar_one()
    store.dispose()
    assert read == values
    assert column_type in ("text", "numeric")


def test_reference_upsert_matches_the_in_memory_rule(db_url):
    store = SqlStore(db_url)
    first = accounts([("Blue Yonder", None, "t-a"), ("Blue Yonder", None, "t-b"), ("Contoso", "id-1", "t-c")])
    second = accounts([("blue yonder", None, "t-right"), ("Contoso Ltd", "id-1", "t-c2")])
    store.upsert_reference(None, first)
    store.upsert_reference(None, first)  # loading twice changes nothing
    with store.engine.connect() as connection:
        assert len(connection.execute(select(t.ProviderAccount.account_pk)).all()) == 3
    store.upsert_reference(None, second)
    with store.engine.connect() as connection:
        tenants = sorted(connection.execute(select(t.ProviderAccount.provider_customer_id)).scalars())
    store.dispose()
    expected = sorted(merge_provider_accounts(merge_provider_accounts(first, first), second)["provider_customer_id"])
    assert tenants == expected == ["t-c2", "t-right"]


def test_a_dry_run_store_is_not_created_on_a_missing_sqlite_file(tmp_path):
    from flows.wiring import build_store
    from w365etl.settings import load_settings

    url = f"sqlite:///{tmp_path / 'absent.sqlite'}"
    settings = load_settings(db_url=url)
    assert build_store(settings, is_dry_run=True) is None
    assert not (tmp_path / "absent.sqlite").exists()


def test_many_processes_opening_a_new_embedded_database_at_once_all_get_in(tmp_path):
    """Whichever connection comes first switches a new SQLite file to WAL; ``PRAGMA
    journal_mode`` does not wait on the busy timeout, so connections opening the file at the
    same moment (two runs started together, two upgrades) used to fail at once with "database is
    locked" (6 of 50 new files with 8 connections each, measured). Every one now gets in, in WAL."""
    from tests.support.threads import at_once
    from w365etl.adapters.store_sql import create_store_engine

    failures: list[BaseException] = []
    modes: set[str] = set()
    for attempt in range(60):
        url = f"sqlite:///{tmp_path / f'new-{attempt}.sqlite'}"

        def open_database(url: str = url) -> str:
            engine = create_store_engine(url)  # an engine each, as separate processes have
            try:
                with engine.connect() as connection:
                    return connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
            finally:
                engine.dispose()

        found, errors = at_once(open_database, 8)
        modes.update(found)
        failures += errors
    assert failures == []
    assert modes == {"wal"}
