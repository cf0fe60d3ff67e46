"""The plan: a pure function from this run's lines and the stored state to what must happen.

It applies R1–R9 to every line, decides each line's bucket once (R2), and lists the billing
contracts to create (R4) and the subscriptions, increases and one-time charges to provision
(R5). Nothing is written here: the plan is persisted as a whole before anything is executed,
which is what makes a crashed or repeated run safe.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from w365etl.columns import is_in
from w365etl.domain import contracts as contract_rules
from w365etl.domain import keys, mapping, outcomes, rules, subscriptions
from w365etl.domain.issues import concat_issues, issues_for
from w365etl.reasons import MAPPING_HOLD_CODES, ReasonCode, SKIP_CODES


@dataclass(frozen=True)
class StoredState:
    """What the database knows that the plan depends on (frames; empty on a first run)."""

    products: pd.DataFrame
    provider_accounts: pd.DataFrame
    customers: pd.DataFrame
    lines: pd.DataFrame
    line_identifiers: pd.DataFrame
    contracts: pd.DataFrame
    subscriptions: pd.DataFrame


@dataclass(frozen=True)
class PlanOptions:
    as_of: dt.date
    contract_end_date: dt.date
    defaults: rules.LineDefaults
    provider_kinds: dict[str, str]
    #: (provider code, provider customer id) pairs the provider said it does not know (R3)
    invalid_accounts: frozenset[tuple[str, str]] = frozenset()


@dataclass
class Plan:
    lines: pd.DataFrame
    issues: pd.DataFrame
    new_contracts: pd.DataFrame
    options: PlanOptions
    notes: list[str] = field(default_factory=list)


def empty_state() -> StoredState:
    """The state of a database that has never run (also what a dry run on no database sees)."""
    return StoredState(
        products=pd.DataFrame(columns=["product_number", "product_name", "product_type", "provider_code",
                                       "provider_sku", "is_recurring", "billing_frequency", "provisioning_unit",
                                       "term_duration", "min_quantity", "max_quantity"]),
        provider_accounts=pd.DataFrame(columns=["customer_name", "customer_id", "provider_code", "provider_customer_id"]),
        customers=pd.DataFrame({"customer_pk": pd.Series(dtype="int64"), "crm_customer_id": pd.Series(dtype="string"),
                                "customer_name": pd.Series(dtype="string"), "name_key": pd.Series(dtype="string")}),
        lines=pd.DataFrame({"line_pk": pd.Series(dtype="int64"), "status": pd.Series(dtype="string"),
                            "content_signature": pd.Series(dtype="string")}),
        line_identifiers=pd.DataFrame({"line_pk": pd.Series(dtype="int64"), "level": pd.Series(dtype="string"),
                                       "identifier": pd.Series(dtype="string")}),
        contracts=pd.DataFrame({"contract_pk": pd.Series(dtype="int64"), "contract_number": pd.Series(dtype="string"),
                                "contract_name": pd.Series(dtype="string"), "customer_pk": pd.Series(dtype="int64"),
                                "contract_type": pd.Series(dtype="string"), "contract_product_type": pd.Series(dtype="string"),
                                "billing_frequency": pd.Series(dtype="string"), "currency_code": pd.Series(dtype="string"),
                                "status": pd.Series(dtype="string"), "created_at": pd.Series(dtype="datetime64[us, UTC]")}),
        subscriptions=pd.DataFrame({"subscription_pk": pd.Series(dtype="int64"), "customer_pk": pd.Series(dtype="int64"),
                                    "contract_pk": pd.Series(dtype="int64"), "product_number": pd.Series(dtype="string"),
                                    "provider_code": pd.Series(dtype="string"), "provisioning_unit": pd.Series(dtype="string"),
                                    "quantity": pd.Series(dtype="string"), "status": pd.Series(dtype="string"),
                                    "provider_subscription_id": pd.Series(dtype="string"),
                                    "created_at": pd.Series(dtype="datetime64[us, UTC]")}),
    )


def build_plan(lines: pd.DataFrame, value_issues: pd.DataFrame, state: StoredState, options: PlanOptions) -> Plan:
    """Apply R1–R9 to the run's lines and decide every line's bucket (R2).

    ``value_issues``: line-level problems already found by ingest and schema validation
    (INVALID_VALUE, INVALID_QUANTITY …) with ``line_index``.
    """
    # the flow keys the lines once, to ask the store about them; other callers may pass raw lines
    frame = lines.copy(deep=False) if "line_key" in lines.columns else keys.add_line_identifiers(lines)
    frame["order_key"] = outcomes.order_keys(frame)
    frame = rules.resolve_products(frame, state.products)
    frame = rules.apply_effective_choices(frame, options.defaults, frozenset(options.provider_kinds))
    skip_reason = rules.skip_reasons(frame)

    # R6: the same line as a stored one? provisioned with the same content → nothing to do
    frame["stored_line_pk"] = keys.match_stored_lines(frame, state.line_identifiers)
    frame["content_signature"] = keys.line_content_signature(frame)
    stored = state.lines.set_index("line_pk")
    stored_status = frame["stored_line_pk"].map(stored["status"]).astype("string")
    stored_signature = frame["stored_line_pk"].map(stored["content_signature"]).astype("string")
    was_provisioned = (stored_status == "provisioned").fillna(False)
    changed = was_provisioned & (stored_signature != frame["content_signature"]).fillna(False)
    is_already = was_provisioned & ~changed

    frame = mapping.resolve_customers(frame, state.customers)
    crm_ids = mapping.customer_crm_ids(frame, state.customers)
    frame["crm_customer_id"] = crm_ids
    accounts = mapping.match_provider_accounts(frame, state.provider_accounts, crm_ids)
    frame["provider_customer_id"] = accounts["provider_customer_id"]
    automatic = frame["effective_provider_code"].map(options.provider_kinds).eq("automatic").fillna(False)
    known = frame["catalog_product_number"].notna() & frame["write_in_product"].isna() & frame["is_known_provider"]
    needs_account = known & automatic
    ambiguous = (needs_account & accounts["is_ambiguous_mapping"]) | frame["is_ambiguous_customer"]
    unmapped = needs_account & ~ambiguous & frame["provider_customer_id"].isna()

    amount_fields = {"quantity", "price_per_unit", "volume_discount", "manual_discount", "tax", "extended_amount"}
    unreadable = value_issues.loc[value_issues["field"].isin(amount_fields), "line_index"].dropna()
    frame["has_unreadable_amount"] = frame["line_index"].isin(unreadable.astype("int64"))

    frame, contracts_to_create, contract_issues = contract_rules.assign_contracts(
        frame, state.contracts, as_of=options.as_of, contract_end_date=options.contract_end_date
    )
    frame, action_issues = subscriptions.plan_line_actions(frame, state.subscriptions)

    own_issues = concat_issues([
        value_issues,
        _changed_line_issues(frame, changed, stored_signature),
        rules.find_line_problems(frame),
        issues_for(frame, ambiguous, ReasonCode.AMBIGUOUS_CUSTOMER, "customer_name",
                   "Customer '" + frame["customer_name"].astype("string") +
                   "' matches more than one account; add the CRM account id"),
        contract_issues,
        action_issues,
    ])
    line_level = own_issues[own_issues["line_index"].notna()]
    problem_lines = frame["line_index"].isin(line_level["line_index"].astype("int64"))
    mapping_reason = pd.Series(pd.NA, index=frame.index, dtype="string")
    mapping_reason[unmapped] = str(ReasonCode.NEEDS_PROVIDER_MAPPING)
    if options.invalid_accounts:
        account = pd.Series(list(zip(frame["effective_provider_code"], frame["provider_customer_id"])), index=frame.index)
        invalid = needs_account & ~ambiguous & ~unmapped & account.isin(options.invalid_accounts)
        mapping_reason[invalid] = str(ReasonCode.PROVIDER_MAPPING_INVALID)

    decided = outcomes.assign_buckets(frame, skip_reason, is_already, problem_lines, mapping_reason)
    frame["bucket"] = decided["bucket"]
    frame["bucket_reason"] = decided["bucket_reason"]
    frame["mapping_reason"] = mapping_reason

    # exception rows: every problem of a rejected line; one row per skipped or held line
    rejected_index = frame.loc[frame["bucket"] == outcomes.REJECTED, "line_index"].unique()
    kept = own_issues[own_issues["line_index"].isna() | own_issues["line_index"].isin(rejected_index)]
    bucket_rows = frame["bucket"].isin([outcomes.SKIPPED, outcomes.HELD])
    reason_rows = _bucket_reason_issues(frame, bucket_rows)
    issues = concat_issues([kept, reason_rows])

    planned = frame["bucket"] == outcomes.PLANNED
    used = frame.loc[planned & frame["is_new_contract"], "contract_number"]
    new_contracts = contracts_to_create[is_in(contracts_to_create["contract_number"], used)].reset_index(drop=True)
    return Plan(lines=frame, issues=issues, new_contracts=new_contracts, options=options)


_BUCKET_MESSAGES = {
    ReasonCode.ORDER_CANCELED: "Order is Canceled: not provisioned (R1)",
    ReasonCode.ORDER_ALREADY_FULFILLED: "Order is already Fulfilled: not provisioned (R1)",
    ReasonCode.ORDER_INVOICED: "Order is Invoiced: not provisioned (R1)",
    ReasonCode.ORDER_HAS_REJECTED_LINES: "Held: another line of this order was rejected (R2)",
    ReasonCode.NEEDS_PROVIDER_MAPPING: "Held: the customer has no provider account mapping for this order's automatic provider (R3)",
    ReasonCode.PROVIDER_MAPPING_INVALID: "Held: the provider does not recognise the customer's mapped account (R3)",
}


def _bucket_reason_issues(frame: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    parts = []
    for code, message in _BUCKET_MESSAGES.items():
        selected = mask & (frame["bucket_reason"] == str(code)).fillna(False)
        field_name = "order_state" if code in SKIP_CODES else None
        value = frame["order_state_code"].map(rules.STATE_LABELS) if code in SKIP_CODES else None
        if code in MAPPING_HOLD_CODES:
            value = frame["effective_provider_code"]
        parts.append(issues_for(frame, selected, code, field_name, message, value=value))
    return concat_issues(parts)


#: the parts of a content signature (``keys.line_content_signature``) and the column each names
_SIGNATURE_FIELDS = ("product_number", "quantity", "price_per_unit")


def _changed_line_issues(frame: pd.DataFrame, changed: pd.Series, stored_signature: pd.Series) -> pd.DataFrame:
    """R6 LINE_CHANGED_AFTER_PROVISIONING, one row per changed line, naming the first of
    product, quantity and price that differs from what was provisioned, with its new value."""
    if not changed.any():
        return issues_for(frame, changed, ReasonCode.LINE_CHANGED_AFTER_PROVISIONING, "quantity", "")
    # the product may hold a "|": split from the right
    now = frame.loc[changed, "content_signature"].astype("string").str.rsplit("|", n=2, expand=True)
    before = stored_signature[changed].astype("string").str.rsplit("|", n=2, expand=True)
    message = ("This line was provisioned before as " + stored_signature.fillna("") +
               " (product|quantity|price); the export now says " + frame["content_signature"])
    undecided = changed.copy()
    parts = []
    for position, field in enumerate(_SIGNATURE_FIELDS):
        differs = pd.Series(False, index=frame.index)
        differs[now.index] = (now[position] != before[position]).fillna(True).to_numpy(dtype=bool)
        mask = undecided & differs if field != _SIGNATURE_FIELDS[-1] else undecided
        value = pd.Series(pd.NA, index=frame.index, dtype="string")
        value[now.index] = now[position]
        if field == "product_number":  # a line that names its product by name: that column
            by_name = mask & frame["product_number"].isna()
            parts.append(issues_for(frame, by_name, ReasonCode.LINE_CHANGED_AFTER_PROVISIONING,
                                    "product_name", message))  # the name as the export gives it
            undecided &= ~by_name
            mask &= ~by_name
        parts.append(issues_for(frame, mask, ReasonCode.LINE_CHANGED_AFTER_PROVISIONING, field, message,
                                value=value))
        undecided &= ~mask
    return concat_issues(parts)
