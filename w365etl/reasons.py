"""Reason codes of SPEC §5: what went wrong with a file or a line, how bad it is, what to do.

Every exception row a run writes carries one of these codes. The severity and the suggested
action live here, next to the code, so that the exception report, the xlsx sheet and the
documentation all say the same thing.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class ReasonCode(StrEnum):
    MISSING_COLUMN = "MISSING_COLUMN"
    AMBIGUOUS_COLUMN = "AMBIGUOUS_COLUMN"
    FILE_REJECTED = "FILE_REJECTED"
    INVALID_VALUE = "INVALID_VALUE"
    UNKNOWN_PRODUCT = "UNKNOWN_PRODUCT"
    WRITE_IN_PRODUCT = "WRITE_IN_PRODUCT"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    DUPLICATE_LINE = "DUPLICATE_LINE"
    LINE_CHANGED_AFTER_PROVISIONING = "LINE_CHANGED_AFTER_PROVISIONING"
    ORDER_ALREADY_FULFILLED = "ORDER_ALREADY_FULFILLED"
    ORDER_INVOICED = "ORDER_INVOICED"
    ORDER_CANCELED = "ORDER_CANCELED"
    ORDER_HAS_REJECTED_LINES = "ORDER_HAS_REJECTED_LINES"
    NEEDS_PROVIDER_MAPPING = "NEEDS_PROVIDER_MAPPING"
    PROVIDER_MAPPING_INVALID = "PROVIDER_MAPPING_INVALID"
    AMBIGUOUS_CUSTOMER = "AMBIGUOUS_CUSTOMER"
    UNKNOWN_BILLING_CONTRACT = "UNKNOWN_BILLING_CONTRACT"
    EXISTING_SUBSCRIPTION_NOT_FOUND = "EXISTING_SUBSCRIPTION_NOT_FOUND"
    PROVIDER_ERROR = "PROVIDER_ERROR"


#: Codes that describe a whole file; its rows are not counted (SPEC §5).
FILE_LEVEL_CODES = frozenset(
    {ReasonCode.MISSING_COLUMN, ReasonCode.AMBIGUOUS_COLUMN, ReasonCode.FILE_REJECTED}
)

#: R1: the order's state skips every line of it.
SKIP_CODES = frozenset(
    {ReasonCode.ORDER_ALREADY_FULFILLED, ReasonCode.ORDER_INVOICED, ReasonCode.ORDER_CANCELED}
)

#: R2/R3: codes that hold a line (it waits; it is not wrong in itself).
HOLD_CODES = frozenset(
    {
        ReasonCode.NEEDS_PROVIDER_MAPPING,
        ReasonCode.PROVIDER_MAPPING_INVALID,
        ReasonCode.ORDER_HAS_REJECTED_LINES,
    }
)

#: R3: the hold codes that list the customer in needs_provider_mapping.csv.
MAPPING_HOLD_CODES = frozenset(
    {ReasonCode.NEEDS_PROVIDER_MAPPING, ReasonCode.PROVIDER_MAPPING_INVALID}
)

_WARNINGS = SKIP_CODES | HOLD_CODES

SUGGESTED_ACTION: dict[ReasonCode, str] = {
    ReasonCode.MISSING_COLUMN: "Re-export the file with the named column (any accepted spelling).",
    ReasonCode.AMBIGUOUS_COLUMN: "Remove one of the two columns that mean the same field, then re-export.",
    ReasonCode.FILE_REJECTED: "Open the file: it is not a readable CSV or xlsx export. Re-export it from D365.",
    ReasonCode.INVALID_VALUE: "Correct the value in D365 and re-export the order.",
    ReasonCode.UNKNOWN_PRODUCT: "Add the product to products.csv or correct the product on the order.",
    ReasonCode.WRITE_IN_PRODUCT: "Replace the write-in product with a catalog product in D365.",
    ReasonCode.INVALID_QUANTITY: "Correct the quantity in D365 (positive, within the product's bounds, whole for Partner Center).",
    ReasonCode.AMOUNT_MISMATCH: "Recalculate the order in D365 so the extended amount matches, then re-export.",
    ReasonCode.CURRENCY_MISMATCH: "Give every line of the order the order's currency in D365.",
    ReasonCode.DUPLICATE_LINE: "Remove the duplicated line from the export (the same line appears twice).",
    ReasonCode.LINE_CHANGED_AFTER_PROVISIONING: "Do not edit provisioned lines: add a new order line for the change.",
    ReasonCode.ORDER_ALREADY_FULFILLED: "None: the order is already fulfilled.",
    ReasonCode.ORDER_INVOICED: "None: the order is invoiced.",
    ReasonCode.ORDER_CANCELED: "None: the order is canceled.",
    ReasonCode.ORDER_HAS_REJECTED_LINES: "Fix the rejected line(s) of this order; the whole order then goes through.",
    ReasonCode.NEEDS_PROVIDER_MAPPING: "Map the customer to its provider account (provider_accounts.csv).",
    ReasonCode.PROVIDER_MAPPING_INVALID: "Correct the customer's provider account mapping (the provider does not know it).",
    ReasonCode.AMBIGUOUS_CUSTOMER: "Add the CRM account id to the mapping or the order so the customer is unique.",
    ReasonCode.UNKNOWN_BILLING_CONTRACT: "Correct the Billing Contract column or leave it blank to use the default.",
    ReasonCode.EXISTING_SUBSCRIPTION_NOT_FOUND: "Provision the line as New, or correct the contract/product/provisioning unit.",
    ReasonCode.PROVIDER_ERROR: "Read the provider's message; fix the cause at the provider. The line is retried next run.",
}


def severity_of(code: ReasonCode | str) -> Severity:
    """Skips and holds are warnings (data waiting); everything else needs fixing: an error."""
    return Severity.WARNING if ReasonCode(code) in _WARNINGS else Severity.ERROR


def suggested_action_of(code: ReasonCode | str) -> str:
    return SUGGESTED_ACTION[ReasonCode(code)]
