"""The synthetic export generator and its oracle (``w365etl.synthetic_orders``).

The generator must be deterministic for a seed, look like a D365 export, have the advertised
shape, and keep every bad case countable; the oracle must be an independent reading of the
SPEC (no pipeline imports) whose runs conserve lines and orders.
"""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from w365etl import synthetic_orders as so
from w365etl.synthetic_orders import RunSpec, generate_orders, write_export

LINES = 40_000


@pytest.fixture(scope="module")
def export():
    return generate_orders(LINES, 7)


def test_the_same_seed_gives_the_same_export_and_files(tmp_path):
    one, two = generate_orders(3_000, 42), generate_orders(3_000, 42)
    pd.testing.assert_frame_equal(one.orders, two.orders)
    pd.testing.assert_frame_equal(one.more_orders, two.more_orders)
    pd.testing.assert_frame_equal(one.truth, two.truth)
    pd.testing.assert_frame_equal(one.customers, two.customers)
    write_export(one, tmp_path / "a")
    write_export(two, tmp_path / "b")
    written = sorted(path.relative_to(tmp_path / "a") for path in (tmp_path / "a").rglob("*.csv"))
    assert len(written) == 6
    for name in written:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    other = generate_orders(3_000, 43)
    assert not one.orders.equals(other.orders)


def test_exactly_the_requested_lines_with_d365_headers(export):
    assert list(export.orders.columns) == so.FLAT_HEADERS
    assert list(export.more_orders.columns) == so.FLAT_HEADERS
    assert len(export.orders) == LINES
    assert len(export.more_orders) == pytest.approx(LINES / 10, rel=0.05)
    assert len(export.truth) == len(export.orders) + len(export.more_orders)
    assert len(generate_orders(1, 0).orders) == 1
    assert len(generate_orders(7, 0).orders) == 7


def test_the_shape_lines_per_order_orders_per_customer_states(export):
    first = export.truth[export.truth["file"] == so.ORDERS]
    orders = first.groupby("order").agg(lines=("line", "size"), customer=("customer", "first"),
                                        state=("state", "first"))
    assert orders["lines"].mean() == pytest.approx(4, abs=0.3)
    assert orders.groupby("customer").size().mean() == pytest.approx(50, abs=5)
    assert (orders["state"] <= 1).mean() == pytest.approx(0.88, abs=0.03)
    assert set(orders["state"]) == {0, 1, 2, 3, 4}
    assert first.groupby("order")["customer"].nunique().max() == 1
    assert first.groupby("order")["state"].nunique().max() == 1


def test_about_five_percent_bad_rows_of_every_kind_one_case_per_order(export):
    first = export.truth[export.truth["file"] == so.ORDERS]
    provisionable = first["state"] <= 1
    bad = provisionable & first["problem"].notna()
    assert bad.mean() == pytest.approx(0.05, abs=0.01)
    assert set(first.loc[bad, "case"]) == set(so.CASE_NAMES)
    assert set(first.loc[bad, "problem"]) == {"INVALID_VALUE", "UNKNOWN_PRODUCT", "WRITE_IN_PRODUCT",
                                              "INVALID_QUANTITY", "AMOUNT_MISMATCH", "CURRENCY_MISMATCH",
                                              "DUPLICATE_LINE"}
    # one case per order; a duplicate is the only case with two bad rows, and they share a GUID
    per_order = first[first["case"].notna()].groupby("order")["case"].agg(["nunique", "size", "first"])
    assert (per_order["nunique"] == 1).all()
    assert (per_order.loc[per_order["first"] != "duplicate_line", "size"] == 1).all()
    assert (per_order.loc[per_order["first"] == "duplicate_line", "size"] == 2).all()
    duplicated = export.orders[first["case"].eq("duplicate_line").to_numpy()]
    assert duplicated.groupby("(Do Not Modify) Order Product").size().eq(2).all()
    assert export.truth["guid"].duplicated().sum() == first["case"].eq("duplicate_line").sum() / 2
    # some skipped orders carry a defect too (R1 wins)
    assert (first["problem"].notna() & ~provisionable).any()


def test_about_ten_percent_of_customers_unmapped_and_they_buy_partner_center(export):
    customers = export.customers
    assert (~customers["is_mapped"]).mean() == pytest.approx(0.10, abs=0.01)
    unmapped = customers.index[~customers["is_mapped"]]
    buys = export.truth[export.truth["automatic"]].groupby("customer").size()
    assert buys.reindex(unmapped, fill_value=0).gt(0).all()
    assert customers["customer_name"].str.casefold().is_unique


def test_cells_look_like_a_d365_display_export(export):
    rows = export.orders
    truth = export.truth[export.truth["file"] == so.ORDERS].reset_index(drop=True)
    assert rows["(Do Not Modify) Order Product"].str.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}").all()
    assert set(rows["Status (Order)"]) == {"Active", "Submitted", "Canceled", "Fulfilled", "Invoiced"}
    assert {"US Dollar", "USD"} <= set(rows["Currency (Order)"])
    assert rows["Price Per Unit"].str.startswith(("$", "€", "£")).mean() == pytest.approx(0.15, abs=0.03)
    assert rows["Quantity"].str.endswith(".00000").any()
    assert set(rows["Provision As"]) == {"", "New"}
    assert set(rows["Fulfill Order"]) == {"", "Yes", "No"}
    # the bad money cells are German-formatted, which en-US cannot read; all others can
    en_us = r"-?[$€£]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)\.[0-9]{2}"
    for column, case in (("Price Per Unit", "invalid_price"), ("Extended Amount", "invalid_extended"),
                         ("Tax", "invalid_tax"), ("Volume Discount", "invalid_volume_discount")):
        bad = truth["case"].eq(case).to_numpy()
        assert rows.loc[bad, column].str.fullmatch(r"-?[0-9.]+,[0-9]{2}").all(), column
        cells = rows.loc[~bad, column]
        assert cells[cells != ""].str.fullmatch(en_us).all(), column
    write_in = truth["case"].eq("write_in").to_numpy()
    assert (rows.loc[write_in, "Write-In Product"] != "").all() and (rows.loc[write_in, "Product ID"] == "").all()
    assert (rows.loc[~write_in, "Write-In Product"] == "").all()


def _money(text: str) -> Decimal:
    return Decimal(re.sub(r"[$€£,]", "", text)) if text else Decimal(0)


def test_good_rows_add_up_and_bad_amounts_do_not(export):
    rows = export.orders.head(5_000)
    truth = export.truth.head(5_000)
    for (_, row), case in zip(rows.iterrows(), truth["case"], strict=True):
        if case in ("invalid_price", "invalid_extended", "invalid_tax", "invalid_volume_discount"):
            continue
        computed = (Decimal(row["Quantity"]) * (_money(row["Price Per Unit"]) - _money(row["Volume Discount"]))
                    - _money(row["Manual Discount"]) + _money(row["Tax"]))
        off = abs(computed - _money(row["Extended Amount"]))
        assert (off > Decimal("0.01")) == (case == "amount_mismatch"), (row.to_dict(), case)


def test_quantity_cases_break_exactly_one_rule(export):
    truth = export.truth.reset_index(drop=True)
    rows = pd.concat([export.orders, export.more_orders], ignore_index=True)
    products = export.products.set_index("product_number")
    quantity = rows["Quantity"].map(Decimal)
    bounds = {number: (products.loc[number, "min_quantity"], products.loc[number, "max_quantity"])
              for number in products.index}
    for case in ("quantity_zero", "quantity_negative", "quantity_fractional_pc", "quantity_above_max",
                 "quantity_below_min"):
        selected = truth["case"].eq(case)
        assert selected.any(), case
        for number, value in zip(truth.loc[selected, "product"], quantity[selected], strict=True):
            low, high = bounds[number]
            if case in ("quantity_zero", "quantity_negative"):
                assert value <= 0 and low == "" and high == ""
            elif case == "quantity_fractional_pc":
                assert value % 1 != 0 and products.loc[number, "provider"] == "partner_center"
                assert (low == "" or value >= int(low)) and (high == "" or value <= int(high))
            elif case == "quantity_above_max":
                assert value % 1 == 0 and value > int(high)
            else:
                assert value % 1 == 0 and 0 < value < int(low)


def test_a_currency_mismatch_is_one_odd_line_in_an_order_of_three_or_more(export):
    truth = export.truth
    mismatched = truth[truth["order"].isin(truth.loc[truth["case"] == "currency_mismatch", "order"])]
    for _, lines in mismatched.groupby("order"):
        counts = lines["currency"].astype(str).value_counts()
        assert len(lines) >= 3 and len(counts) == 2 and counts.min() == 1


def test_the_follow_up_adds_existing_lines_to_subscriptions_of_the_first_export(export):
    more = export.truth[export.truth["file"] == so.MORE_ORDERS]
    existing = more[more["existing"]]
    assert len(existing) == pytest.approx(0.3 * len(more), rel=0.2)
    assert existing["recurring"].all() and existing["problem"].isna().all()
    assert (more["state"] <= 1).all() and more["problem"].isna().all()
    first = export.truth[(export.truth["file"] == so.ORDERS) & export.truth["recurring"]]
    bought = set(zip(first["customer"], first["currency"], first["product"], strict=True))
    assert set(zip(existing["customer"], existing["currency"], existing["product"], strict=True)) <= bought


def test_write_export_writes_the_exports_and_both_reference_folders(tmp_path):
    export = generate_orders(1_000, 3)
    write_export(export, tmp_path)
    raw = (tmp_path / so.ORDERS_FILE).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf\"(Do Not Modify) Order Product\"")
    orders = pd.read_csv(tmp_path / so.ORDERS_FILE, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    pd.testing.assert_frame_equal(orders, export.orders.astype(object), check_dtype=False)
    products = pd.read_csv(tmp_path / so.REFERENCE_DIR / "products.csv", dtype=str, keep_default_na=False)
    assert list(products.columns) == so.PRODUCT_COLUMNS
    assert set(products["product_number"]) >= set(export.truth["product"].dropna())
    partial = pd.read_csv(tmp_path / so.REFERENCE_DIR / "provider_accounts.csv", dtype=str, keep_default_na=False)
    full = pd.read_csv(tmp_path / so.ALL_MAPPED_REFERENCE_DIR / "provider_accounts.csv", dtype=str,
                       keep_default_na=False)
    assert list(full.columns) == ["customer_name", "customer_id", "provider", "provider_customer_id"]
    assert len(full) == len(export.customers)
    assert len(partial) == export.customers["is_mapped"].sum()
    assert set(full["provider"]) == {"partner_center"}


def test_the_oracle_conserves_lines_and_orders_and_reruns_change_nothing(export):
    expected = export.expected_scenario()
    for name, summary in expected.items():
        lines, orders = summary["lines"], summary["orders"]
        assert lines["input"] == sum(n for key, n in lines.items() if key != "input"), name
        assert orders["input"] == sum(n for key, n in orders.items() if key != "input"), name
        held = summary["exceptions_by_reason"].get("ORDER_HAS_REJECTED_LINES", 0) + \
            summary["exceptions_by_reason"].get("NEEDS_PROVIDER_MAPPING", 0)
        assert held == lines["held"], name
    first, rerun = expected["first"], expected["rerun"]
    assert expected["dry_run"] == first
    assert rerun["lines"]["already_provisioned"] == first["lines"]["provisioned"]
    assert rerun["orders"]["already_fulfilled"] == first["orders"]["fulfilled"]
    assert rerun["billing_contracts"] == {"created": 0, "reused": 0}
    assert rerun["subscriptions"] == {"created": 0, "updated": 0} and rerun["one_time_charges"]["created"] == 0
    for key in ("skipped", "held", "rejected"):
        assert rerun["lines"][key] == first["lines"][key]
    assert rerun["exceptions_by_reason"] == first["exceptions_by_reason"]
    mapped = expected["mapped"]
    assert mapped["customers_needing_provider_mapping"] == 0
    assert mapped["lines"]["already_provisioned"] == first["lines"]["provisioned"]
    assert "NEEDS_PROVIDER_MAPPING" not in mapped["exceptions_by_reason"]
    assert mapped["subscriptions"]["updated"] > 0 and mapped["billing_contracts"]["reused"] > 0
    # a dry run between runs changes nothing
    with_dry = export.expected(RunSpec(), RunSpec(dry_run=True), RunSpec())
    assert with_dry[2] == rerun


def test_the_oracle_reads_the_spec_not_the_pipeline():
    tree = ast.parse(Path(so.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if name.startswith(("w365etl", "flows", "schemas"))}


def test_generate_orders_command_writes_the_files(tmp_path):
    from w365etl.cli import app

    result = CliRunner().invoke(app, ["generate-orders", "--lines", "200", "--seed", "5", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in (so.ORDERS_FILE, so.MORE_ORDERS_FILE, "reference/products.csv", "reference/provider_accounts.csv",
                 "reference_all_mapped/provider_accounts.csv", "expected_summaries.json"):
        assert (tmp_path / name).is_file(), name
    assert len(pd.read_csv(tmp_path / so.ORDERS_FILE, dtype=str)) == 200
