"""persist_plan writes the lines a slice at a time (``STORE_SLICE_LINES``, bounded memory on a
million-line run). Slicing must not change what is stored: the same two nights on sample_data/
(a first run, then an identical re-run that updates the held lines) give the same ``lines``,
``line_identifiers``, subscriptions and charges with 3-line slices as with one slice. R6: every
line stored once, under every identifier it was seen with.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.conftest import SAMPLE_DATA
from tests.support.database import rows
from tests.support.stages import run_stages
from w365etl.adapters import store_sql
from w365etl.adapters import tables as t
from w365etl.adapters.store_sql import SqlStore
from w365etl.reference import read_reference_dir
from w365etl.settings import Settings

AS_OF = dt.date(2026, 11, 29)
FILES = [SAMPLE_DATA / "d365_order_products_export.xlsx", SAMPLE_DATA / "dataverse_salesorders.csv",
         SAMPLE_DATA / "dataverse_salesorderdetails.csv"]


def _two_nights(tmp_path, name: str) -> tuple[str, list[dict]]:
    url = f"sqlite:///{tmp_path / name}.sqlite"
    settings = Settings(db_url=url, providers={"partner_center": {"adapter": "record"}, "manual": {"adapter": "manual"}})
    store = SqlStore(url)
    summaries = []
    try:
        for night in (1, 2):
            reference = read_reference_dir(SAMPLE_DATA / "reference") if night == 1 else None
            summaries.append(run_stages(store, settings, FILES, run_id=f"{name}-{night}", as_of=AS_OF,
                                        reference=reference))
    finally:
        store.dispose()
    return url, summaries


def _stored(url: str) -> dict[str, list]:
    line_columns = [column for column in t.Line.__table__.c if column.name not in ("updated_at", "last_run_id",
                                                                                   "provisioned_run_id")]
    return {
        "lines": sorted(rows(url, select(*line_columns)), key=lambda row: row.line_pk),
        "identifiers": sorted(rows(url, select(t.LineIdentifier.identifier, t.LineIdentifier.line_pk,
                                               t.LineIdentifier.level))),
        "subscriptions": sorted(rows(url, select(t.Subscription.subscription_number, t.Subscription.quantity,
                                                 t.Subscription.source_line_pk))),
        "charges": sorted(rows(url, select(t.OneTimeCharge.charge_number, t.OneTimeCharge.extended_amount))),
    }


def test_lines_stored_in_small_slices_equal_lines_stored_at_once(tmp_path, monkeypatch):
    whole_url, whole_summaries = _two_nights(tmp_path, "whole")
    monkeypatch.setattr(store_sql, "STORE_SLICE_LINES", 3)
    sliced_url, sliced_summaries = _two_nights(tmp_path, "sliced")

    whole, sliced = _stored(whole_url), _stored(sliced_url)
    assert len(whole["lines"]) > 3 * 5  # many slices, or this proves nothing
    assert whole["subscriptions"]
    for table in whole:
        assert sliced[table] == whole[table], table
    for first, second in zip(whole_summaries, sliced_summaries):
        assert {key: value for key, value in first.items() if key != "run_id"} == \
               {key: value for key, value in second.items() if key != "run_id"}
    # the second night re-read every line and stored none twice (R6)
    assert whole_summaries[1]["lines"]["already_provisioned"] == whole_summaries[0]["lines"]["provisioned"] > 0
    line_pks = [row.line_pk for row in whole["lines"]]
    assert len(line_pks) == len(set(line_pks))


@pytest.mark.parametrize("slice_lines", [1, 7])
def test_a_slice_boundary_inside_an_order_changes_nothing(tmp_path, monkeypatch, slice_lines):
    """Orders are atomic (R2) in the plan, not in how its lines are written."""
    whole_url, _ = _two_nights(tmp_path, "whole")
    monkeypatch.setattr(store_sql, "STORE_SLICE_LINES", slice_lines)
    sliced_url, _ = _two_nights(tmp_path, "sliced")
    assert _stored(sliced_url)["lines"] == _stored(whole_url)["lines"]
