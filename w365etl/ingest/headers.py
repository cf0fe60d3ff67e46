"""Column headers of order files (SPEC §2.1): the alias table and header matching.

A D365 export names a column either by its display name ("Price Per Unit", "Status (Order)")
or, from the Web API / Dataverse, by its logical name ("priceperunit", "statecode"). Matching is
deliberately strict: case and whitespace are forgiven and a trailing related-entity suffix is
dropped, then the header must equal an alias exactly. No fuzzy or prefix matching — "Status"
and "Status Reason" are different fields, "(Do Not Modify) Order" is the order's GUID while
"(Do Not Modify) Order Product" is the line's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Dialect = Literal["display", "logical"]


@dataclass(frozen=True)
class FieldSpec:
    """One canonical field: how a file may name it and whether a table must have it."""

    name: str
    logical: tuple[str, ...]
    display: tuple[str, ...]
    required: bool = False
    #: the field lives on the order (header+lines: taken from the orders table).
    order_level: bool = False

    @property
    def label(self) -> str:
        """How we name the field to a person when the file does not have it."""
        return (self.display or self.logical)[0]

    @property
    def spellings(self) -> tuple[str, ...]:
        return self.display + self.logical


_FMT = "@OData.Community.Display.V1.FormattedValue"

FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("order_id", ("salesorderid", "_salesorderid_value"), ("(Do Not Modify) Order",), order_level=True),
        FieldSpec("order_number", ("ordernumber",), ("Order ID", "Order Number"), required=True, order_level=True),
        FieldSpec("order_name", ("name",), ("Name", "Order Name"), order_level=True),
        FieldSpec("customer_id", ("customerid", "_customerid_value"), (), order_level=True),
        FieldSpec(
            "customer_name",
            ("customeridname", "_customerid_value" + _FMT),
            ("Customer", "Potential Customer"),
            required=True,
            order_level=True,
        ),
        FieldSpec(
            "currency",
            ("isocurrencycode", "transactioncurrencyidname", "_transactioncurrencyid_value" + _FMT),
            ("Currency",),
            required=True,
            order_level=True,
        ),
        FieldSpec("order_state", ("statecode",), ("Status",), required=True, order_level=True),
        FieldSpec("order_status_reason", ("statuscode",), ("Status Reason",), order_level=True),
        FieldSpec("payment_terms", ("paymenttermscode",), ("Payment Terms",), order_level=True),
        FieldSpec("line_id", ("salesorderdetailid",), ("(Do Not Modify) Order Product",)),
        FieldSpec("line_number", ("lineitemnumber",), ("Line Item Number",)),
        FieldSpec("product_number", ("productnumber",), ("Product ID", "Product Number")),
        FieldSpec("product_name", ("productidname", "productname"), ("Existing Product", "Product", "Product Name")),
        FieldSpec("write_in_product", ("productdescription",), ("Write-In Product",)),
        FieldSpec("quantity", ("quantity",), ("Quantity",), required=True),
        FieldSpec("unit", ("uomidname", "_uomid_value" + _FMT), ("Unit",)),
        FieldSpec("price_per_unit", ("priceperunit",), ("Price Per Unit",), required=True),
        FieldSpec("volume_discount", ("volumediscountamount",), ("Volume Discount",)),
        FieldSpec("manual_discount", ("manualdiscountamount",), ("Manual Discount",)),
        FieldSpec("tax", ("tax",), ("Tax",)),
        FieldSpec("extended_amount", ("extendedamount",), ("Extended Amount",)),
        # Billing-contract and provisioning choices made on the Work 365 forms (optional).
        FieldSpec("contract_type", (), ("Contract Type",)),
        FieldSpec("billing_frequency", (), ("Billing Frequency",)),
        FieldSpec("contract_product_type", (), ("Contract Product Type",)),
        FieldSpec("process_refunds", (), ("Process Refunds",)),
        FieldSpec("billing_contract", (), ("Billing Contract",)),
        FieldSpec("provision_as", (), ("Provision As",)),
        FieldSpec("provisioning_unit", (), ("Provisioning Unit",)),
        FieldSpec("provision_on", (), ("Provision On",)),
        FieldSpec("fulfill_order", (), ("Fulfill Order",)),
    )
}

#: Fields an order carries; in header+lines they come from the orders table.
ORDER_LEVEL_FIELDS: tuple[str, ...] = tuple(name for name, spec in FIELDS.items() if spec.order_level)
#: Required fields (checked after the orders/lines join, on the union of both tables).
REQUIRED_FIELDS: tuple[str, ...] = tuple(name for name, spec in FIELDS.items() if spec.required)
#: At least one of these must be a column.
PRODUCT_FIELDS: tuple[str, ...] = ("product_number", "product_name")

#: D365 "Export to Excel" bookkeeping columns: known, deliberately not used.
IGNORED_HEADERS: tuple[str, ...] = (
    "(Do Not Modify) Row Checksum",
    "(Do Not Modify) Modified On",
    "@odata.etag",
)

_SUFFIX = re.compile(r"\s*\((?:order|order product|existing product)\)$")
_SPACE = re.compile(r"\s+")
#: invisible characters that come with copy-paste and concatenated exports (BOM, zero-width)
_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060]")


def normalise_header(header: object) -> str:
    """Case-folded, whitespace-collapsed header without a trailing related-entity suffix.

    >>> normalise_header("  Status   (Order) ")
    'status'
    """
    text = "" if header is None else str(header)
    text = _SPACE.sub(" ", _INVISIBLE.sub("", text)).strip().lower()
    return _SUFFIX.sub("", text).strip()


def _alias_table() -> tuple[dict[str, str], frozenset[str], frozenset[str]]:
    aliases: dict[str, str] = {}
    logical: set[str] = set()
    display: set[str] = set()
    for spec in FIELDS.values():
        for name in spec.logical:
            key = normalise_header(name)
            assert aliases.get(key, spec.name) == spec.name, f"alias {name!r} used twice"
            aliases[key] = spec.name
            logical.add(key)
        for name in spec.display:
            key = normalise_header(name)
            assert aliases.get(key, spec.name) == spec.name, f"alias {name!r} used twice"
            aliases[key] = spec.name
            display.add(key)
    # "quantity", "tax", "name" are both: they say nothing about the dialect.
    return aliases, frozenset(logical - display), frozenset(display - logical)


ALIASES, _LOGICAL_ONLY, _DISPLAY_ONLY = _alias_table()
_IGNORED = frozenset(normalise_header(h) for h in IGNORED_HEADERS)


def field_of(header: object) -> str | None:
    """The canonical field a header names, or None (unknown or ignored)."""
    return ALIASES.get(normalise_header(header))


def is_ignored(header: object) -> bool:
    return normalise_header(header) in _IGNORED


@dataclass(frozen=True)
class HeaderMatch:
    """How one table's header row maps onto the canonical fields."""

    #: field → position of its column in the table.
    positions: dict[str, int]
    #: field → the header text as it appears in the file.
    headers: dict[str, str]
    #: header texts that name no field (blank headers are left out).
    unknown: list[str]
    #: field → every header text that maps to it, for fields named more than once.
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    dialect: Dialect = "display"

    @property
    def has_quantity(self) -> bool:
        return "quantity" in self.positions

    @property
    def known_count(self) -> int:
        return len(self.positions)


def match_headers(headers: Sequence[object]) -> HeaderMatch:
    """Map a header row onto fields: exact alias match after normalisation."""
    positions: dict[str, int] = {}
    texts: dict[str, str] = {}
    seen: dict[str, list[str]] = {}
    unknown: list[str] = []
    logical_votes = display_votes = 0
    for position, header in enumerate(headers):
        text = "" if header is None else str(header)
        key = normalise_header(text)
        if not key or key in _IGNORED:
            continue
        name = ALIASES.get(key)
        if name is None:
            unknown.append(text)
            continue
        seen.setdefault(name, []).append(text)
        if name not in positions:
            positions[name] = position
            texts[name] = text
        logical_votes += key in _LOGICAL_ONLY
        display_votes += key in _DISPLAY_ONLY
    ambiguous = {name: found for name, found in seen.items() if len(found) > 1}
    dialect: Dialect = "logical" if logical_votes > display_votes else "display"
    return HeaderMatch(positions, texts, unknown, ambiguous, dialect)


def accepted_spellings(name: str) -> str:
    """The accepted headers of a field, for a MISSING_COLUMN message."""
    return ", ".join(f"'{spelling}'" for spelling in FIELDS[name].spellings)
