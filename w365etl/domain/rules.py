"""The line rules that need the catalog: R1 (order state), R8 (amounts), R9 (values, quantities),
R6's in-run duplicates, and each line's effective provisioning choices (SPEC §2.3 precedence:
line column > product catalog > settings).

Every function takes frames and plain values and returns frames; nothing here reads a file,
the clock or the database.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from w365etl.amounts import AMOUNT_TOLERANCE, MONEY_TYPE, QUANTITY_SCALE, QUANTITY_TYPE, decimals_to_text, units_to_text
from w365etl.domain.issues import concat_issues, issues_for
from w365etl.domain.keys import duplicates_by_identifier
from w365etl.reasons import ReasonCode
from w365etl.reference import name_key

#: R1: statecode → the skip reason; 0 Active and 1 Submitted are provisioned.
SKIPPED_STATES = {
    2: ReasonCode.ORDER_CANCELED,
    3: ReasonCode.ORDER_ALREADY_FULFILLED,
    4: ReasonCode.ORDER_INVOICED,
}
STATE_LABELS = {0: "Active", 1: "Submitted", 2: "Canceled", 3: "Fulfilled", 4: "Invoiced"}
PARTNER_CENTER = "partner_center"
TERM_BY_UNIT = {"Monthly": "P1M", "Annual": "P1Y"}


@dataclass(frozen=True)
class LineDefaults:
    """The settings-level defaults of SPEC §2.3 as plain values."""

    payment_terms: str = "Net 30"
    process_refunds: str = "Use Global Setting"
    provision_as: str = "New"
    fulfill_order: bool = True
    billing_frequency: str = "Monthly"
    provisioning_unit: str = "Monthly"
    contract_product_type: str = "CSP"


def skip_reasons(lines: pd.DataFrame) -> pd.Series:
    """R1: the skip reason of each line's order, or NA when the order is provisioned.

    The state belongs to the order: when the rows of one order disagree (a flat export edited
    by hand), a single Fulfilled, Invoiced or Canceled row skips the whole order — nothing of
    an order D365 calls closed is ever provisioned.
    """
    reasons = lines["order_state_code"].map({code: str(reason) for code, reason in SKIPPED_STATES.items()})
    reasons = reasons.astype("string")
    order = lines["order_key"] if "order_key" in lines.columns else lines["order_number"]
    first_skip = (pd.DataFrame({"order": order, "reason": reasons, "at": lines["line_index"]})
                  .dropna(subset=["order", "reason"]).sort_values("at").drop_duplicates("order")
                  .set_index("order")["reason"])
    return order.map(first_skip).astype("string").fillna(reasons)


def resolve_products(lines: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Attach the catalog row of each line: by product number when the line has one, else by
    product name. A product number the catalog does not know is not replaced by a guess from
    the name: the line is UNKNOWN_PRODUCT (R9).

    Adds ``catalog_product_number`` (NA when unknown) and the catalog columns prefixed
    ``catalog_``.
    """
    catalog = products.set_index("product_number", drop=False)
    by_number = lines["product_number"].astype("string").str.strip()
    known_number = by_number.where(by_number.isin(catalog.index))
    names = name_key(products["product_name"])
    # a name two catalog rows share once compared (a rename loaded beside an older product) means
    # neither: the line is UNKNOWN_PRODUCT rather than a guess (a file's own duplicates are
    # refused when it is read)
    is_single = ~names.duplicated(keep=False)
    name_index = pd.Series(products["product_number"].to_numpy()[is_single.to_numpy()], index=names[is_single].to_numpy())
    by_name = name_key(lines["product_name"]).map(name_index).astype("string").where(by_number.isna())
    number = known_number.fillna(by_name)
    out = lines.copy(deep=False)
    out["catalog_product_number"] = number.astype("string")
    attached = catalog.reindex(number.fillna("\x00").to_numpy())
    for column in ["product_name", "product_type", "provider_code", "provider_sku", "is_recurring",
                   "billing_frequency", "provisioning_unit", "term_duration", "min_quantity",
                   "max_quantity"]:
        out[f"catalog_{column}"] = attached[column].to_numpy()
    out["catalog_is_recurring"] = out["catalog_is_recurring"].astype("boolean")
    out["catalog_min_quantity"] = out["catalog_min_quantity"].astype("Int64")
    out["catalog_max_quantity"] = out["catalog_max_quantity"].astype("Int64")
    return out


def apply_effective_choices(
    lines: pd.DataFrame, defaults: LineDefaults, provider_codes: frozenset[str]
) -> pd.DataFrame:
    """Each line's effective billing and provisioning choices (SPEC §2.3 precedence)."""
    out = lines.copy(deep=False)
    recurring = out["catalog_is_recurring"].fillna(True).astype(bool)
    out["is_recurring"] = recurring
    out["effective_contract_type"] = pd.Series("Non-Recurring", index=out.index, dtype="string").where(
        ~recurring, "Recurring"
    )
    frequency = out["billing_frequency"].astype("string").fillna(out["catalog_billing_frequency"].astype("string"))
    out["effective_billing_frequency"] = frequency.fillna(defaults.billing_frequency).where(recurring)
    product_type = out["contract_product_type"].astype("string").fillna(out["catalog_product_type"].astype("string"))
    out["effective_contract_product_type"] = product_type.fillna(defaults.contract_product_type)
    unit = out["provisioning_unit"].astype("string").fillna(out["catalog_provisioning_unit"].astype("string"))
    out["effective_provisioning_unit"] = unit.fillna(defaults.provisioning_unit).where(recurring)
    term = out["catalog_term_duration"].astype("string").fillna(
        out["effective_provisioning_unit"].map(TERM_BY_UNIT).astype("string")
    )
    out["effective_term_duration"] = term.where(recurring)
    out["effective_payment_terms"] = out["payment_terms"].astype("string").fillna(defaults.payment_terms)
    out["effective_process_refunds"] = out["process_refunds"].astype("string").fillna(defaults.process_refunds)
    provision_as = out["provision_as"].astype("string").fillna(defaults.provision_as)
    out["effective_provision_as"] = provision_as.where(recurring, "New")
    out["effective_provider_code"] = (
        out["provision_on"].astype("string").str.lower().fillna(out["catalog_provider_code"].astype("string"))
    )
    out["effective_fulfill_order"] = out["fulfill_order"].astype("boolean").fillna(defaults.fulfill_order)
    out["is_known_provider"] = out["effective_provider_code"].isin(provider_codes)
    return out


def quantity_units(quantity: pd.Series) -> pd.Series:
    """Quantity as int64 in 10⁻⁵ units: exact, and cheap to sum and compare."""
    scaled = pc.multiply(pa.array(quantity, type=quantity.dtype.pyarrow_dtype),
                         pa.scalar(10**QUANTITY_SCALE, pa.decimal128(6, 0)))
    return pd.Series(pc.cast(scaled, pa.int64()), index=quantity.index, dtype="Int64")


def find_line_problems(lines: pd.DataFrame) -> pd.DataFrame:
    """R6 duplicates, R8 amounts and currency, R9 catalog and quantity checks.

    Problems of lines that end skipped (R1) or already provisioned (R6) are dropped later,
    by the bucket decision.
    """
    issues = []
    # one row per duplicated line, naming the column that repeats: the line id when the GUID
    # does, else the line number (a file without the hidden GUID columns has no line id)
    by_guid, by_number = duplicates_by_identifier(lines)
    issues.append(issues_for(lines, by_guid, ReasonCode.DUPLICATE_LINE, "line_id",
                             "The same line appears more than once in this run: " + lines["line_key"]))
    issues.append(issues_for(lines, by_number & ~by_guid, ReasonCode.DUPLICATE_LINE, "line_number",
                             "The same order number and line number appear more than once in this run: "
                             + lines["order_number"].astype("string") + ", line "
                             + lines["line_number"].astype("Int64").astype("string")))

    write_in = lines["write_in_product"].notna()
    issues.append(issues_for(lines, write_in, ReasonCode.WRITE_IN_PRODUCT, "write_in_product",
                             "Write-in product '" + lines["write_in_product"].astype("string") +
                             "' cannot be provisioned"))
    has_product = lines["product_number"].notna() | lines["product_name"].notna()
    unknown = ~write_in & has_product & lines["catalog_product_number"].isna()
    product_field = pd.Series("product_number", index=lines.index).where(lines["product_number"].notna(), "product_name")
    product_text = lines["product_number"].astype("string").fillna(lines["product_name"].astype("string"))
    for field in ("product_number", "product_name"):
        mask = unknown & (product_field == field)
        issues.append(issues_for(lines, mask, ReasonCode.UNKNOWN_PRODUCT, field,
                                 "Product '" + product_text + "' is not in the catalog (products.csv)"))

    known = lines["catalog_product_number"].notna() & ~write_in
    contradicting = known & lines["contract_type"].notna() & (
        lines["contract_type"].astype("string") != lines["effective_contract_type"]
    ).fillna(False).astype(bool)
    issues.append(issues_for(lines, contradicting, ReasonCode.INVALID_VALUE, "contract_type",
                             "Contract Type '" + lines["contract_type"].astype("string") +
                             "' contradicts the catalog: the product is " +
                             lines["effective_contract_type"].str.lower()))
    unknown_provider = known & ~lines["is_known_provider"].astype(bool)
    issues.append(issues_for(lines, unknown_provider, ReasonCode.INVALID_VALUE, "provision_on",
                             "Provider '" + lines["effective_provider_code"].astype("string") +
                             "' is not configured", value=lines["effective_provider_code"]))

    issues.append(_amount_problems(lines))
    issues.append(_currency_problems(lines))
    issues.append(_quantity_problems(lines, known))
    return concat_issues(issues)


#: R8's intermediate types: exact, and wide enough for the largest values a cell may hold
_UNIT_NET_TYPE = pa.decimal128(MONEY_TYPE.precision + 1, MONEY_TYPE.scale)
_AMOUNT_TYPE = pa.decimal128(37, QUANTITY_TYPE.scale + MONEY_TYPE.scale)


def _amount_problems(lines: pd.DataFrame) -> pd.DataFrame:
    """R8: extended = quantity × (price − volume discount) − manual discount + tax, ±0.01."""
    zero = pa.scalar(0, MONEY_TYPE)
    def money(column: str) -> pa.Array:
        return pc.fill_null(pa.array(lines[column], type=MONEY_TYPE), zero)

    quantity = pa.array(lines["quantity"], type=lines["quantity"].dtype.pyarrow_dtype)
    # keep precisions inside decimal128's 38 digits, with room for every value the parser
    # lets through (money < 10¹², quantity < 10¹³): price − discount < 2·10¹² needs 13 integer
    # digits, the gross < 2·10²⁵ needs 26 — decimal(37, 11) — and ± a discount or tax still fits
    unit_net = pc.cast(pc.subtract(money("price_per_unit"), money("volume_discount")), _UNIT_NET_TYPE)
    gross = pc.cast(pc.multiply(quantity, unit_net), _AMOUNT_TYPE)
    net = pc.cast(pc.subtract(gross, money("manual_discount")), _AMOUNT_TYPE)
    computed = pc.cast(pc.add(net, money("tax")), _AMOUNT_TYPE)
    given = pa.array(lines["extended_amount"], type=MONEY_TYPE)
    difference = pc.abs(pc.subtract(given, computed))
    tolerance = pa.scalar(AMOUNT_TOLERANCE, pa.decimal128(3, 2))
    mismatch = pd.Series(pc.greater(difference, tolerance), index=lines.index, dtype="boolean").fillna(False)
    mismatch &= lines["price_per_unit"].notna() & lines["quantity"].notna()
    # a cell that could not be read is its own INVALID_VALUE; taking it as 0 would invent a
    # second problem (SPEC §2.1: never guessed)
    if "has_unreadable_amount" in lines.columns:
        mismatch &= ~lines["has_unreadable_amount"].astype(bool)
    computed_text = decimals_to_text(pd.Series(computed, index=lines.index, dtype=pd.ArrowDtype(computed.type)))
    message = ("Extended Amount " + decimals_to_text(lines["extended_amount"]) +
               " differs from quantity × (price − volume discount) − manual discount + tax = " +
               computed_text)
    return issues_for(lines, mismatch.astype(bool), ReasonCode.AMOUNT_MISMATCH, "extended_amount", message)


def _currency_problems(lines: pd.DataFrame) -> pd.DataFrame:
    """R8: every line of an order has the order's currency (its most common; ties: first seen)."""
    has = lines["currency_code"].notna() & lines["order_number"].notna()
    subset = lines.loc[has, ["order_number", "currency_code", "line_index"]]
    if subset.empty:
        return issues_for(lines, pd.Series(False, index=lines.index), ReasonCode.CURRENCY_MISMATCH, "currency_code", "")
    counts = subset.groupby(["order_number", "currency_code"], sort=False).agg(
        n=("line_index", "size"), first=("line_index", "min")
    ).reset_index()
    counts = counts.sort_values(["order_number", "n", "first"], ascending=[True, False, True])
    order_currency = counts.drop_duplicates("order_number").set_index("order_number")["currency_code"]
    expected = lines["order_number"].map(order_currency)
    mismatch = has & (lines["currency_code"] != expected).fillna(False)
    message = ("Currency " + lines["currency_code"].astype("string") + " differs from the order's currency " +
               expected.astype("string"))
    return issues_for(lines, mismatch, ReasonCode.CURRENCY_MISMATCH, "currency_code", message)


def _quantity_problems(lines: pd.DataFrame, known: pd.Series) -> pd.DataFrame:
    """R9: whole quantities for Partner Center; catalog bounds for lines that create a quantity.

    Bounds of ``Existing`` lines apply to the resulting total and are checked by R5.
    """
    units = quantity_units(lines["quantity"])
    positive = (units > 0).fillna(False)
    fractional = (units % 10**QUANTITY_SCALE != 0).fillna(False)
    partner_center = (lines["effective_provider_code"] == PARTNER_CENTER).fillna(False).astype(bool)
    not_whole = known & positive & partner_center & fractional
    issues = [issues_for(lines, not_whole, ReasonCode.INVALID_QUANTITY, "quantity",
                         "Quantity " + lines["quantity"].astype("string") +
                         " must be a whole number for Partner Center")]
    creates = known & positive & ~not_whole & (lines["effective_provision_as"] != "Existing").fillna(True).astype(bool)
    issues.append(bound_problems(lines, creates, units))
    return concat_issues(issues)


def bound_problems(lines: pd.DataFrame, mask: pd.Series, total_units: pd.Series) -> pd.DataFrame:
    """R9: ``total_units`` (10⁻⁵ units) within the product's min/max quantity."""
    scale = 10**QUANTITY_SCALE
    low = lines["catalog_min_quantity"].astype("Int64") * scale
    high = lines["catalog_max_quantity"].astype("Int64") * scale
    too_low = mask & (total_units < low).fillna(False)
    too_high = mask & (total_units > high).fillna(False)
    total_text = units_to_text(total_units)
    message_low = "Quantity " + total_text + " is below the product's minimum " + lines["catalog_min_quantity"].astype("string")
    message_high = "Quantity " + total_text + " is above the product's maximum " + lines["catalog_max_quantity"].astype("string")
    return concat_issues([
        issues_for(lines, too_low, ReasonCode.INVALID_QUANTITY, "quantity", message_low),
        issues_for(lines, too_high, ReasonCode.INVALID_QUANTITY, "quantity", message_high),
    ])
