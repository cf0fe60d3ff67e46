"""R5 — subscriptions and one-time charges: what each line turns into.

* a recurring line provisioned ``New`` creates a subscription;
* ``Existing`` adds its quantity to the oldest active subscription that existed before the run
  with the same (customer, contract, product, provider, provisioning unit) — so the result never
  depends on row order — and the product's bounds apply to the resulting total;
* a non-recurring line creates a one-time charge under a non-recurring contract.
"""

from __future__ import annotations

import pandas as pd

from w365etl.amounts import decimals_from_text, QUANTITY_TYPE
from w365etl.domain.issues import concat_issues, issues_for
from w365etl.domain.rules import bound_problems, quantity_units
from w365etl.reasons import ReasonCode

CREATE = "create_subscription"
INCREASE = "increase_subscription"
CHARGE = "one_time_charge"
_MATCH = ["customer_key", "contract_key", "product_number", "provider_code", "provisioning_unit"]


def plan_line_actions(lines: pd.DataFrame, subscriptions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add ``action``, ``target_subscription_pk``, ``quantity_before_units`` and
    ``quantity_after_units`` (10⁻⁵ units, for increases); return (lines, issues)."""
    out = lines.copy(deep=False)
    action = pd.Series(CHARGE, index=out.index, dtype="string")
    action = action.where(~out["is_recurring"].astype(bool), CREATE)
    existing = out["is_recurring"].astype(bool) & (out["effective_provision_as"] == "Existing").fillna(False).astype(bool)
    action = action.where(~existing, INCREASE)
    out["action"] = action
    out["target_subscription_pk"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    out["quantity_before_units"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    out["quantity_after_units"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    out["target_provider_subscription_id"] = pd.Series(pd.NA, index=out.index, dtype="string")
    if not existing.any():
        return out, concat_issues([])

    stored = subscriptions[subscriptions["status"] == "Active"].copy()
    stored["customer_key"] = "pk:" + stored["customer_pk"].astype("int64").astype("string")
    stored["contract_key"] = "pk:" + stored["contract_pk"].astype("int64").astype("string")
    stored = stored.sort_values(["created_at", "subscription_pk"]).drop_duplicates(_MATCH)
    wanted = pd.DataFrame(
        {
            "customer_key": out["customer_key"], "contract_key": out["contract_key"],
            "product_number": out["catalog_product_number"],
            "provider_code": out["effective_provider_code"],
            "provisioning_unit": out["effective_provisioning_unit"],
        },
        index=out.index,
    ).loc[existing].astype("string")
    found = wanted.reset_index().merge(
        stored[_MATCH + ["subscription_pk", "quantity", "provider_subscription_id"]].astype(
            {column: "string" for column in _MATCH}),
        on=_MATCH, how="left",
    ).set_index("index")
    out.loc[found.index, "target_subscription_pk"] = found["subscription_pk"].astype("Int64")
    out.loc[found.index, "target_provider_subscription_id"] = found["provider_subscription_id"].astype("string")
    missing = existing & out["target_subscription_pk"].isna()
    issues = [issues_for(out, missing, ReasonCode.EXISTING_SUBSCRIPTION_NOT_FOUND, "provision_as",
                         "No active subscription of " + out["catalog_product_number"].astype("string")
                         + " (" + out["effective_provisioning_unit"].astype("string") + ", "
                         + out["effective_provider_code"].astype("string") + ") under contract "
                         + out["contract_number"].astype("string").fillna("(new)") + " to add to")]

    increasing = existing & ~missing
    if increasing.any():
        before_text = found.loc[increasing[increasing].index, "quantity"].astype("string")
        before_units = quantity_units(decimals_from_text(before_text, QUANTITY_TYPE))
        units = quantity_units(out.loc[increasing, "quantity"])
        ordered = pd.DataFrame(
            {"target": out.loc[increasing, "target_subscription_pk"], "line_index": out.loc[increasing, "line_index"],
             "units": units, "before": before_units}
        ).sort_values(["target", "line_index"])
        # the change records chain in input order; the bound applies to the final total
        ordered["after"] = ordered["before"] + ordered.groupby("target")["units"].cumsum()
        ordered["line_before"] = ordered["after"] - ordered["units"]
        ordered["total"] = ordered["before"] + ordered.groupby("target")["units"].transform("sum")
        out.loc[ordered.index, "quantity_before_units"] = ordered["line_before"].astype("Int64")
        out.loc[ordered.index, "quantity_after_units"] = ordered["after"].astype("Int64")
        total = pd.Series(pd.NA, index=out.index, dtype="Int64")
        total.loc[ordered.index] = ordered["total"].astype("Int64")
        issues.append(bound_problems(out, increasing, total))
    return out, concat_issues(issues)
