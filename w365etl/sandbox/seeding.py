"""Provisioning (R5) on the sandbox: what a Partner Center sandbox started for a run must know.

The real Partner Center remembers every subscription earlier runs bought; a sandbox started
afresh for a run does not, so it is seeded with them — else an ``Existing`` line (R5) would be
refused as "subscription not found" (20003) on every run. Pure: rows in, seed rows out.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from w365etl.domain import mapping
from w365etl.domain.subscriptions import INCREASE


def stored_subscriptions(code: str, state) -> list[dict] | None:
    """The provider's active subscriptions in ``state`` (those the plan may increase, R5) with
    their provider account and SKU — the rows a sandbox started for the run is seeded with."""
    if state is None or state.subscriptions.empty:
        return None
    subscriptions = state.subscriptions[(state.subscriptions["provider_code"] == code)
                                        & (state.subscriptions["status"] == "Active")
                                        & state.subscriptions["provider_subscription_id"].notna()]
    if subscriptions.empty or state.provider_accounts.empty:
        return None
    # the customer's provider account as the plan finds it (R3: by CRM id, else by name)
    customers = state.customers[state.customers["customer_pk"].isin(subscriptions["customer_pk"])]
    customers = customers.reset_index(drop=True)
    accounts = mapping.match_provider_accounts(
        pd.DataFrame({"customer_name_key": customers["name_key"], "effective_provider_code": code}),
        state.provider_accounts, customers["crm_customer_id"])
    tenant_of = pd.Series(accounts["provider_customer_id"].to_numpy(), index=customers["customer_pk"].to_numpy())
    products = state.products[state.products["provider_code"] == code].drop_duplicates("product_number")
    products = products.set_index("product_number")
    rows = pd.DataFrame({
        "provider_customer_id": subscriptions["customer_pk"].map(tenant_of),
        "provider_subscription_id": subscriptions["provider_subscription_id"],
        "provider_sku": subscriptions["product_number"].map(products["provider_sku"]),
        "quantity": subscriptions["quantity"],
        "term_duration": subscriptions["product_number"].map(products["term_duration"]),
        "billing_frequency": subscriptions["product_number"].map(products["billing_frequency"]),
    })
    return rows.astype(object).where(rows.notna(), None).to_dict("records")


def increased_subscriptions(requests: pd.DataFrame) -> list[dict]:
    """The subscriptions a batch of provider requests increases (R5 Existing), as seed rows:
    the quantity before the run is the smallest ``quantity_after - quantity`` of the lines that
    increase it (they add up in order)."""
    increases = requests[(requests["action"] == INCREASE) & requests["provider_subscription_id"].notna()]
    rows: dict[str, dict] = {}
    for row in increases.itertuples():
        before = Decimal(str(row.quantity_after)) - Decimal(str(row.quantity))
        seen = rows.get(row.provider_subscription_id)
        if seen is None or before < seen["quantity"]:
            rows[row.provider_subscription_id] = {
                "provider_customer_id": row.provider_customer_id,
                "provider_subscription_id": row.provider_subscription_id, "provider_sku": row.provider_sku,
                "quantity": before, "term_duration": row.term_duration, "billing_frequency": row.billing_frequency}
    return list(rows.values())
