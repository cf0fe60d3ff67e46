"""A realistic export, end to end: the real flow against what the SPEC says, on SQLite and PostgreSQL.

``w365etl.synthetic_orders`` draws a ~2 000-line D365 export with every kind of bad row, some
skipped orders and a customer without a Partner Center mapping, and computes — from its own
generation choices, not from pipeline code — the counts each run's ``summary.json`` must show:

1. a dry run (the same counts as the first run, nothing written),
2. the first run,
3. an identical re-run (everything provisioned is now ``already_provisioned``),
4. a run with every customer mapped and a second file of new orders (``Provision As = Existing``
   lines add to subscriptions of run 2; one adds to a subscription that only this run creates,
   which R5 does not find),
5. an identical re-run of 4 (that line now finds its subscription).
"""

from __future__ import annotations

import datetime as dt
import json
import pprint
from pathlib import Path

import pytest

from w365etl.synthetic_orders import (
    ALL_MAPPED_REFERENCE_DIR, MORE_ORDERS_FILE, ORDERS_FILE, REFERENCE_DIR, comparable, generate_orders, write_export,
)

AS_OF = dt.date(2026, 11, 29)
LINES = 2_000
SEED = 2026


@pytest.fixture(scope="module")
def export():
    return generate_orders(LINES, SEED)


def test_the_scenario_exercises_every_rule(export):
    """Guard: the seed keeps producing a scenario worth running (every bad case, a hold, R5 both ways)."""
    expected = export.expected_scenario()
    first, mapped, again = expected["first"], expected["mapped"], expected["mapped_rerun"]
    assert set(first["exceptions_by_reason"]) == {
        "INVALID_VALUE", "UNKNOWN_PRODUCT", "WRITE_IN_PRODUCT", "INVALID_QUANTITY", "AMOUNT_MISMATCH",
        "CURRENCY_MISMATCH", "DUPLICATE_LINE", "ORDER_ALREADY_FULFILLED", "ORDER_INVOICED", "ORDER_CANCELED",
        "ORDER_HAS_REJECTED_LINES", "NEEDS_PROVIDER_MAPPING"}
    assert first["customers_needing_provider_mapping"] >= 1
    assert first["orders"]["provisioned_not_fulfilled"] >= 1
    assert mapped["exceptions_by_reason"].get("EXISTING_SUBSCRIPTION_NOT_FOUND", 0) >= 1
    assert mapped["subscriptions"]["updated"] >= 1 and mapped["billing_contracts"]["reused"] >= 1
    assert again["lines"]["provisioned"] >= 1 and again["subscriptions"]["updated"] >= 1


@pytest.mark.usefixtures("prefect_server")
def test_a_realistic_export_gives_the_counts_the_spec_implies(export, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("W365_DB_URL", db_url)
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "record")
    from flows.provision_orders import provision_orders

    folder = tmp_path / "export"
    write_export(export, folder)
    first_files = [folder / ORDERS_FILE]
    all_files = [folder / ORDERS_FILE, folder / MORE_ORDERS_FILE]
    runs = [
        ("dry_run", first_files, REFERENCE_DIR, True),
        ("first", first_files, REFERENCE_DIR, False),
        ("rerun", first_files, REFERENCE_DIR, False),
        ("mapped", all_files, ALL_MAPPED_REFERENCE_DIR, False),
        ("mapped_rerun", all_files, ALL_MAPPED_REFERENCE_DIR, False),
    ]
    expected = export.expected_scenario()
    got: dict[str, dict] = {}
    for name, files, reference, dry_run in runs:
        result = provision_orders(files=[str(path) for path in files], reference_dir=str(folder / reference),
                                  out_dir=str(tmp_path / "out"), as_of=AS_OF, dry_run=dry_run)
        summary = json.loads((Path(result["report_folder"]) / "summary.json").read_text(encoding="utf-8"))
        assert summary["dry_run"] is dry_run
        got[name] = comparable(summary)

    # every run is compared before anything is asserted, so one failure shows every disagreement
    differences = {name: _differences(expected[name], got[name]) for name in expected}
    mismatches = {name: diff for name, diff in differences.items() if diff}
    assert not mismatches, "run → {count: (SPEC/oracle, pipeline)}:\n" + pprint.pformat(mismatches)
    assert got["dry_run"] == got["first"]


def _differences(expected: dict, got: dict) -> dict:
    """``{key: (expected, got)}`` for the counts that differ; nested counts by their inner key."""
    out = {}
    for key in expected.keys() | got.keys():
        want, have = expected.get(key), got.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            inner = {f"{key}.{sub}": (want.get(sub, 0), have.get(sub, 0))
                     for sub in want.keys() | have.keys() if want.get(sub, 0) != have.get(sub, 0)}
            out.update(inner)
        elif want != have:
            out[key] = (want, have)
    return dict(sorted(out.items()))
