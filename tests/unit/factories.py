"""Builders of the frames the plan works on: normalised lines (ingest's contract), the catalog,
provider accounts and stored state — so rule tests say only what matters to the rule.

Lines are built from ``empty_lines()`` so every column exists with ingest's dtype: quantities and
money are exact Arrow decimals, order states ``Int64``, text the pandas ``str`` dtype.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from w365etl.amounts import MONEY_TYPE, QUANTITY_TYPE, decimals_from_text
from w365etl.domain.rules import LineDefaults
from w365etl.ingest.result import empty_lines
from w365etl.plan import Plan, PlanOptions, StoredState, build_plan, empty_state
from w365etl.reference import name_key

AS_OF = dt.date(2026, 11, 29)
END = dt.date(2099, 12, 31)
PROVIDER_KINDS = {"partner_center": "automatic", "manual": "manual"}

ACTIVE, SUBMITTED, CANCELED, FULFILLED, INVOICED = 0, 1, 2, 3, 4

#: product numbers of the standard test catalog
M365 = "CFQ7TTC0LH18"          # partner_center, recurring, Monthly/Monthly, 1..300
M365_ANNUAL = "CFQ7TTC0LF8R"   # partner_center, recurring, Annually/Annual
SUPPORT = "SUP-PREMIER"        # manual, recurring, Support Contract, Monthly
SETUP = "SVC-SETUP"            # manual, one-time (not recurring), Managed Services
LICENCE = "MAN-LIC"            # manual, recurring, fractional quantities allowed, 2..10

_QUANTITY_COLUMNS = {"quantity"}
_MONEY_COLUMNS = {"price_per_unit", "volume_discount", "manual_discount", "tax", "extended_amount"}
_INT_COLUMNS = {"order_state_code", "order_status_reason_code", "line_number"}

_LINE_DEFAULTS: dict[str, Any] = {
    "order_number": "SO-1",
    "customer_name": "Contoso Ltd",
    "currency_code": "USD",
    "order_state_code": ACTIVE,
    "product_number": M365,
    "quantity": "1",
    "unit": "Monthly",
    "price_per_unit": "10",
}


def line(**values: Any) -> dict[str, Any]:
    """One line as a dict: the defaults (an Active order SO-1 of Contoso, one M365 licence at
    10 USD) overridden by ``values``. Decimals are given as text ("12.5"); ``None`` blanks a cell."""
    return {**_LINE_DEFAULTS, **values}


def lines_frame(rows: Iterable[Mapping[str, Any]], *, file_path: str = "orders.csv") -> pd.DataFrame:
    """A normalised line frame (ingest's contract) from row dicts; unspecified columns are NA.

    ``line_number`` defaults to the row's position within its order (1, 2, …) unless a row
    gives it (``None`` blanks it).
    """
    rows = [dict(row) for row in rows]
    template = empty_lines()
    n = len(rows)
    index = pd.RangeIndex(n)
    per_order: dict[Any, int] = {}
    for row in rows:
        if "line_number" not in row:
            key = row.get("order_number")
            per_order[key] = per_order.get(key, 0) + 1
            row["line_number"] = per_order[key]
    frame: dict[str, pd.Series] = {}
    for column in template.columns:
        dtype = template[column].dtype
        given = [row.get(column) for row in rows]
        if column == "line_index":
            values = pd.Series(range(n), index=index, dtype="int64")
        elif column in ("row_number", "order_row_number"):
            values = pd.Series(range(2, n + 2), index=index, dtype="int64")
        elif column in ("file_path", "order_file_path", "table_key", "order_table_key"):
            values = pd.Series([file_path] * n, index=index, dtype=dtype)
        elif column == "layout":
            values = pd.Series(["flat"] * n, index=index, dtype=dtype)
        elif column == "dialect":
            values = pd.Series(["display"] * n, index=index, dtype=dtype)
        elif column in _QUANTITY_COLUMNS:
            values = decimals_from_text(pd.Series(_texts(given), index=index, dtype=object), QUANTITY_TYPE)
        elif column in _MONEY_COLUMNS:
            values = decimals_from_text(pd.Series(_texts(given), index=index, dtype=object), MONEY_TYPE)
        else:
            values = pd.Series([pd.NA if v is None else v for v in given], index=index, dtype=object).astype(dtype)
        frame[column] = values
    out = pd.DataFrame(frame, index=index)
    unknown = {key for row in rows for key in row} - set(out.columns)
    if unknown:
        raise KeyError(f"not a line column: {sorted(unknown)}")
    return out


def _texts(values: list[Any]) -> list[str | None]:
    return [None if v is None else str(v) for v in values]


def products(extra: Iterable[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """The standard test catalog (``StoredState.products``), plus ``extra`` rows."""
    rows = [
        _product(M365, "Microsoft 365 Business Premium", "CSP", "partner_center", "CFQ7TTC0LH18:0001",
                 True, "Monthly", "Monthly", "P1M", 1, 300),
        _product(M365_ANNUAL, "Microsoft 365 E3 (annual)", "CSP", "partner_center", "CFQ7TTC0LF8R:0001",
                 True, "Annually", "Annual", "P1Y", None, None),
        _product(SUPPORT, "Premier Support", "Support Contract", "manual", None,
                 True, "Monthly", "Monthly", "P1M", None, None),
        _product(SETUP, "Tenant Setup", "Managed Services", "manual", None,
                 False, None, None, None, None, None),
        _product(LICENCE, "Manual Licence", "CSP", "manual", None,
                 True, "Monthly", "Monthly", "P1M", 2, 10),
    ]
    rows.extend(dict(row) for row in extra)
    frame = pd.DataFrame(rows)
    return frame.astype({"is_recurring": bool, "min_quantity": "Int64", "max_quantity": "Int64"})


def _product(number, name, product_type, provider, sku, recurring, frequency, unit, term, low, high) -> dict:
    return {"product_number": number, "product_name": name, "product_type": product_type,
            "provider_code": provider, "provider_sku": sku, "is_recurring": recurring,
            "billing_frequency": frequency, "provisioning_unit": unit, "term_duration": term,
            "min_quantity": low, "max_quantity": high}


def provider_accounts(*rows: Mapping[str, Any]) -> pd.DataFrame:
    """``StoredState.provider_accounts`` rows: customer_name, customer_id, provider_code,
    provider_customer_id (customer_id and provider_code optional)."""
    columns = ["customer_name", "customer_id", "provider_code", "provider_customer_id"]
    full = [{"customer_id": None, "provider_code": "partner_center", **row} for row in rows]
    return pd.DataFrame(full, columns=columns).astype("string")


def contoso_mapping() -> pd.DataFrame:
    return provider_accounts({"customer_name": "Contoso Ltd", "provider_customer_id": "tenant-contoso"})


def customers(*rows: Mapping[str, Any]) -> pd.DataFrame:
    """Stored CRM accounts: customer_pk, crm_customer_id (optional), customer_name."""
    base = empty_state().customers
    if not rows:
        return base
    frame = pd.DataFrame([{"crm_customer_id": None, **row} for row in rows])
    return pd.DataFrame({
        "customer_pk": frame["customer_pk"].astype("int64"),
        "crm_customer_id": frame["crm_customer_id"].astype("string"),
        "customer_name": frame["customer_name"].astype("string"),
        "name_key": name_key(frame["customer_name"]).astype("string"),
    })


def contracts(*rows: Mapping[str, Any]) -> pd.DataFrame:
    """Stored billing contracts. Defaults: Active, Recurring, CSP, Monthly, USD, created 2025-01-01."""
    base = empty_state().contracts
    if not rows:
        return base
    defaults = {"contract_type": "Recurring", "contract_product_type": "CSP", "billing_frequency": "Monthly",
                "currency_code": "USD", "status": "Active", "contract_name": None,
                "created_at": "2025-01-01T00:00:00Z"}
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    frame["contract_name"] = frame["contract_name"].fillna(frame["contract_number"])
    out = frame.astype({"contract_pk": "int64", "customer_pk": "int64"})
    for column in ("contract_number", "contract_name", "contract_type", "contract_product_type",
                   "billing_frequency", "currency_code", "status"):
        out[column] = out[column].astype("string")
    out["created_at"] = pd.to_datetime(out["created_at"], utc=True).astype("datetime64[us, UTC]")
    return out[list(base.columns)]


def subscriptions(*rows: Mapping[str, Any]) -> pd.DataFrame:
    """Stored subscriptions. Defaults: Active, partner_center, Monthly, created 2025-01-01."""
    base = empty_state().subscriptions
    if not rows:
        return base
    defaults = {"provider_code": "partner_center", "provisioning_unit": "Monthly", "status": "Active",
                "provider_subscription_id": None, "created_at": "2025-01-01T00:00:00Z"}
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    out = frame.astype({"subscription_pk": "int64", "customer_pk": "int64", "contract_pk": "int64"})
    for column in ("product_number", "provider_code", "provisioning_unit", "quantity", "status",
                   "provider_subscription_id"):
        out[column] = out[column].astype("string")
    out["created_at"] = pd.to_datetime(out["created_at"], utc=True).astype("datetime64[us, UTC]")
    return out[list(base.columns)]


def stored_lines(*rows: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``StoredState.lines``, ``StoredState.line_identifiers``) from rows with ``line_pk``,
    ``status`` (default 'provisioned'), ``content_signature`` and ``identifiers`` — a dict
    level → identifier text (as :func:`keys.add_line_identifiers` builds them)."""
    state = empty_state()
    if not rows:
        return state.lines, state.line_identifiers
    lines = pd.DataFrame({
        "line_pk": pd.Series([row["line_pk"] for row in rows], dtype="int64"),
        "status": pd.Series([row.get("status", "provisioned") for row in rows], dtype="string"),
        "content_signature": pd.Series([row.get("content_signature") for row in rows], dtype="string"),
    })
    ids = [(row["line_pk"], level, identifier) for row in rows for level, identifier in row["identifiers"].items()]
    identifiers = pd.DataFrame({
        "line_pk": pd.Series([i[0] for i in ids], dtype="int64"),
        "level": pd.Series([i[1] for i in ids], dtype="string"),
        "identifier": pd.Series([i[2] for i in ids], dtype="string"),
    })
    return lines, identifiers


def state(**parts: pd.DataFrame) -> StoredState:
    """A stored state: the standard catalog, Contoso mapped to Partner Center, the rest empty;
    ``parts`` replace any of the frames (``provider_accounts=provider_accounts()`` for none)."""
    base = empty_state()
    defaults = {"products": products(), "provider_accounts": contoso_mapping()}
    return dataclasses.replace(base, **{**defaults, **parts})


def options(**overrides: Any) -> PlanOptions:
    values = {"as_of": AS_OF, "contract_end_date": END, "defaults": LineDefaults(),
              "provider_kinds": dict(PROVIDER_KINDS)}
    values.update(overrides)
    return PlanOptions(**values)


def no_issues() -> pd.DataFrame:
    from w365etl.domain.issues import empty_issues

    return empty_issues()


def plan(rows_or_frame: Iterable[Mapping[str, Any]] | pd.DataFrame, stored: StoredState | None = None,
         value_issues: pd.DataFrame | None = None, **option_overrides: Any) -> Plan:
    """``build_plan`` on the given lines with the standard state and options."""
    frame = rows_or_frame if isinstance(rows_or_frame, pd.DataFrame) else lines_frame(rows_or_frame)
    return build_plan(frame, no_issues() if value_issues is None else value_issues,
                      stored if stored is not None else state(), options(**option_overrides))


def value_issue(line_index: int, reason_code: str, field: str, value: str = "", message: str = "bad") -> pd.DataFrame:
    """One ingest/validation issue row for ``line_index`` (what ``value_issues`` carries)."""
    return pd.DataFrame({
        "line_index": pd.Series([line_index], dtype="Int64"), "reason_code": [reason_code],
        "field": [field], "value": [value], "message": [message],
    }).astype({"reason_code": "str", "field": "str", "value": "str", "message": "str"})


def buckets(result: Plan) -> list[str]:
    return result.lines.sort_values("line_index")["bucket"].tolist()


def bucket_of(result: Plan, line_index: int) -> str:
    return result.lines.loc[result.lines["line_index"] == line_index, "bucket"].item()


def reason_of(result: Plan, line_index: int) -> Any:
    return result.lines.loc[result.lines["line_index"] == line_index, "bucket_reason"].item()


def issue_codes(result: Plan, line_index: int | None = None) -> list[str]:
    issues = result.issues
    if line_index is not None:
        issues = issues[issues["line_index"] == line_index]
    return sorted(issues["reason_code"].astype(str))


def stored_state_after(result: Plan, stored: StoredState, *, status: str = "provisioned",
                       first_pk: int = 1000) -> StoredState:
    """The stored state a real run leaves behind when every planned line of ``result`` ends
    ``status`` (default: the provider accepted it), as the SQL store persists a plan:

    * a line record for every line new to the store (status = its bucket, planned → ``status``;
      lines already provisioned are not touched) and every identifier it was seen with
      (an identifier is stored once: the first line that has it keeps it);
    * every customer first seen in the run (``new:…`` keys become ``pk:<n>``), and a CRM id
      learned for a stored customer that had none;
    * the run's new contracts, Active, created on the as-of date.
    """
    lines = result.lines.sort_values("line_index")
    new_rows = lines[lines["stored_line_pk"].isna()].copy()
    new_rows["line_pk"] = range(first_pk, first_pk + len(new_rows))
    final_status = new_rows["bucket"].astype("string").replace({"planned": status})
    new_lines = pd.DataFrame({
        "line_pk": new_rows["line_pk"].astype("int64"),
        "status": final_status.astype("string"),
        "content_signature": new_rows["content_signature"].astype("string"),
    })
    # a stored line that was not provisioned is updated in place (its new status)
    updated = lines[lines["stored_line_pk"].notna() & (lines["bucket"] != "already_provisioned")]
    old_lines = stored.lines.copy()
    if not updated.empty:
        new_status = updated.assign(s=updated["bucket"].astype("string").replace({"planned": status}))
        by_pk = new_status.drop_duplicates("stored_line_pk").set_index("stored_line_pk")
        touch = old_lines["line_pk"].isin(by_pk.index) & (old_lines["status"] != "provisioned")
        old_lines.loc[touch, "status"] = old_lines.loc[touch, "line_pk"].map(by_pk["s"]).astype("string")
        old_lines.loc[touch, "content_signature"] = old_lines.loc[touch, "line_pk"].map(
            by_pk["content_signature"]).astype("string")
    pk_of_row = lines["stored_line_pk"].astype("Int64").copy()
    pk_of_row.loc[new_rows.index] = new_rows["line_pk"].astype("Int64")
    id_parts = []
    for level in ("guid", "number", "content"):
        column = lines[f"key_{level}"]
        present = column.notna()
        id_parts.append(pd.DataFrame({
            "line_pk": pk_of_row[present].astype("int64"),
            "level": pd.Series(level, index=lines.index[present], dtype="string"),
            "identifier": column[present].astype("string"),
        }))
    identifiers = pd.concat([stored.line_identifiers, *id_parts], ignore_index=True)
    identifiers = identifiers.drop_duplicates("identifier")  # the store's unique identifier

    # customers first seen in the run get a pk; a stored customer without CRM id learns one
    old_customers = stored.customers.copy()
    keyed = lines.dropna(subset=["customer_key"])
    learned = keyed[keyed["customer_key"].str.startswith("pk:") & keyed["customer_id"].notna()]
    learned = learned.drop_duplicates("customer_key")
    learned_pk = learned["customer_key"].str.removeprefix("pk:").astype("int64")
    learned_id = pd.Series(learned["customer_id"].to_numpy(), index=learned_pk.to_numpy())
    learn = old_customers["customer_pk"].isin(learned_id.index) & old_customers["crm_customer_id"].isna()
    old_customers.loc[learn, "crm_customer_id"] = old_customers.loc[learn, "customer_pk"].map(learned_id).astype("string")
    existing_pks = old_customers["customer_pk"]
    next_pk = int(existing_pks.max()) + 1 if len(existing_pks) else 1
    new_keyed = keyed[keyed["customer_key"].str.startswith("new:")]
    first_id = new_keyed.groupby("customer_key")["customer_id"].first()
    first_seen = new_keyed.drop_duplicates("customer_key").set_index("customer_key")
    new_keys = list(first_seen.index)
    pk_of = {key: next_pk + i for i, key in enumerate(new_keys)}
    new_customers = pd.DataFrame({
        "customer_pk": pd.Series([pk_of[k] for k in new_keys], dtype="int64"),
        "crm_customer_id": pd.Series([first_id.get(k) for k in new_keys], dtype="object").astype("string"),
        "customer_name": pd.Series([first_seen.loc[k, "customer_name"] for k in new_keys], dtype="string"),
        "name_key": pd.Series([first_seen.loc[k, "customer_name_key"] for k in new_keys], dtype="string"),
    })

    def customer_pk(key: str) -> int:
        return pk_of[key] if key in pk_of else int(str(key).removeprefix("pk:"))

    existing_contract_pks = stored.contracts["contract_pk"]
    next_contract = int(existing_contract_pks.max()) + 1 if len(existing_contract_pks) else 1
    created = result.new_contracts
    new_contracts = pd.DataFrame({
        "contract_pk": pd.Series(range(next_contract, next_contract + len(created)), dtype="int64"),
        "contract_number": created["contract_number"].astype("string").to_numpy(),
        "contract_name": created["contract_name"].astype("string").to_numpy(),
        "customer_pk": pd.Series([customer_pk(k) for k in created["customer_key"]], dtype="int64"),
        "contract_type": created["contract_type"].astype("string").to_numpy(),
        "contract_product_type": created["contract_product_type"].astype("string").to_numpy(),
        "billing_frequency": created["billing_frequency"].astype("string").to_numpy(),
        "currency_code": created["currency_code"].astype("string").to_numpy(),
        "status": pd.Series("Active", index=range(len(created)), dtype="string"),
        "created_at": pd.Series(pd.Timestamp(AS_OF, tz="UTC"), index=range(len(created))).astype("datetime64[us, UTC]"),
    })
    return dataclasses.replace(
        stored,
        lines=_concat(old_lines, new_lines),
        line_identifiers=identifiers.reset_index(drop=True),
        customers=_concat(old_customers, new_customers),
        contracts=_concat(stored.contracts, new_contracts),
    )


def _concat(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    if new.empty:
        return old
    if old.empty:
        return new.reset_index(drop=True).astype(old.dtypes.to_dict())
    return pd.concat([old, new], ignore_index=True).astype(old.dtypes.to_dict())
