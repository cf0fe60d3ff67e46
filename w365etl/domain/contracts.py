"""R4 — billing contracts: find, pin or create the contract each line is billed under.

Key = (customer, contract type, contract product type, billing frequency, currency); a
non-recurring contract has no billing frequency, and the provisioning unit never takes part.
A ``Billing Contract`` cell pins an existing contract of the same customer; otherwise the oldest
active contract with the key is reused; otherwise one contract per key is created for the run.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from w365etl.domain.issues import issues_for
from w365etl.domain.mapping import stable_id
from w365etl.reasons import ReasonCode
from w365etl.reference import name_key

KEY_COLUMNS = [
    "customer_key",
    "effective_contract_type",
    "effective_contract_product_type",
    "effective_billing_frequency",
    "currency_code",
]
_CONTRACT_KEY = ["customer_key", "contract_type", "contract_product_type", "billing_frequency", "currency_code"]


def _stored_contracts(contracts: pd.DataFrame) -> pd.DataFrame:
    stored = contracts.copy()
    stored["customer_key"] = "pk:" + stored["customer_pk"].astype("int64").astype("string")
    stored["contract_key"] = "pk:" + stored["contract_pk"].astype("int64").astype("string")
    return stored.astype({"billing_frequency": "string"})


def assign_contracts(
    lines: pd.DataFrame,
    contracts: pd.DataFrame,
    *,
    as_of: dt.date,
    contract_end_date: dt.date,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return (lines with ``contract_key``/``contract_number``/``is_new_contract``,
    the contracts to create, UNKNOWN_BILLING_CONTRACT issues).
    """
    out = lines.copy(deep=False)
    stored = _stored_contracts(contracts)
    out["contract_key"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out["contract_number"] = pd.Series(pd.NA, index=out.index, dtype="string")

    # pinned by name or number, within the customer's own contracts
    pinned = out["billing_contract"].notna()
    if pinned.any():
        by_number = stored.assign(pin=stored["contract_number"].str.casefold())[["customer_key", "pin", "contract_key", "contract_number", "created_at", "contract_pk"]]
        by_name = stored.assign(pin=name_key(stored["contract_name"]))[["customer_key", "pin", "contract_key", "contract_number", "created_at", "contract_pk"]]
        lookup = pd.concat([by_number, by_name]).sort_values(["created_at", "contract_pk"]).drop_duplicates(["customer_key", "pin"])
        wanted = pd.DataFrame({"customer_key": out["customer_key"], "pin": name_key(out["billing_contract"])}, index=out.index)
        found = wanted.reset_index().merge(lookup, on=["customer_key", "pin"], how="left").set_index("index")
        out.loc[pinned, "contract_key"] = found.loc[pinned[pinned].index, "contract_key"]
        out.loc[pinned, "contract_number"] = found.loc[pinned[pinned].index, "contract_number"]
    unknown_pin = pinned & out["contract_key"].isna()
    issues = issues_for(out, unknown_pin, ReasonCode.UNKNOWN_BILLING_CONTRACT, "billing_contract",
                        "Billing contract '" + out["billing_contract"].astype("string") +
                        "' does not exist for customer " + out["customer_name"].astype("string"))

    # reuse the oldest active contract with the key
    open_rows = ~pinned & out["customer_key"].notna()
    active = stored[stored["status"] == "Active"].sort_values(["created_at", "contract_pk"])
    oldest = active.drop_duplicates(_CONTRACT_KEY)[_CONTRACT_KEY + ["contract_key", "contract_number"]]
    keyed = out.loc[open_rows, KEY_COLUMNS].astype("string")
    keyed.columns = _CONTRACT_KEY
    reused = keyed.reset_index().merge(oldest.astype({c: "string" for c in _CONTRACT_KEY}), on=_CONTRACT_KEY, how="left").set_index("index")
    out.loc[reused.index, "contract_key"] = reused["contract_key"]
    out.loc[reused.index, "contract_number"] = reused["contract_number"]

    # create one contract per remaining key
    creating = open_rows & out["contract_key"].isna()
    new = out.loc[creating, KEY_COLUMNS + ["customer_name", "effective_payment_terms", "effective_process_refunds", "line_index"]]
    new = new.sort_values("line_index").drop_duplicates(KEY_COLUMNS)
    identity = pd.Series(dtype="string")
    if not new.empty:  # "a|b|c" per row, column by column (a row-wise join is a Python call per contract)
        parts = [new[column].astype("string").fillna("") for column in KEY_COLUMNS]
        identity = parts[0]
        for part in parts[1:]:
            identity = identity + "|" + part
    new_contracts = pd.DataFrame(
        {
            "contract_number": stable_id("BC", identity) if not new.empty else pd.Series(dtype="string"),
            "customer_key": new["customer_key"].to_numpy(),
            "customer_name": new["customer_name"].to_numpy(),
            "contract_type": new["effective_contract_type"].to_numpy(),
            "contract_product_type": new["effective_contract_product_type"].to_numpy(),
            "billing_frequency": new["effective_billing_frequency"].to_numpy(),
            "currency_code": new["currency_code"].to_numpy(),
            "payment_terms": new["effective_payment_terms"].to_numpy(),
            "process_refunds": new["effective_process_refunds"].to_numpy(),
            "start_date": as_of,
            "end_date": contract_end_date,
        }
    ).reset_index(drop=True)
    new_contracts["contract_name"] = (
        new_contracts["customer_name"].astype("string") + " - " + new_contracts["contract_product_type"].astype("string")
        + " " + new_contracts["billing_frequency"].astype("string").fillna("Non-Recurring")
        + " " + new_contracts["currency_code"].astype("string")
    )
    if not new.empty:
        numbers = new.assign(contract_number=new_contracts["contract_number"].to_numpy())
        keyed_new = out.loc[creating, KEY_COLUMNS].reset_index().merge(
            numbers[KEY_COLUMNS + ["contract_number"]], on=KEY_COLUMNS, how="left"
        ).set_index("index")
        out.loc[keyed_new.index, "contract_number"] = keyed_new["contract_number"]
        out.loc[keyed_new.index, "contract_key"] = "new:" + keyed_new["contract_number"]
    out["is_new_contract"] = out["contract_key"].str.startswith("new:").fillna(False)
    return out, new_contracts, issues
