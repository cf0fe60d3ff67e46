"""Builds the sample inputs of ``make run`` (deterministic; writes next to this file).

    python sample_data/build_sample_data.py

Writes:

* ``reference/products.csv`` and ``reference/provider_accounts.csv`` (SPEC §2.2);
* ``d365_order_products_export.xlsx``: a D365 display-name "Export to Excel" of the Order
  Products view (flat layout, hidden ``(Do Not Modify)`` columns, a hidden ``hiddenSheet``);
* ``dataverse_salesorders.csv`` + ``dataverse_salesorderdetails.csv``: a logical-name
  (Dataverse Web API) header + lines pair; the orders file is semicolon-delimited UTF-8 with
  a BOM, the lines file comma-delimited UTF-8;
* ``README.md``: every order, what it exercises and the expected outcome of each line,
  with the summary counts a first run must report.

The expected outcomes are written down here next to the data (not computed by w365etl), so
the README is an independent statement of what SPEC §3 requires of a first run.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import re
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

HERE = Path(__file__).resolve().parent
NAMESPACE = uuid.UUID("5d1c7e3a-2b9f-4c61-9a0e-6f3b8d2e4a17")
CENT = Decimal("0.01")
FIXED_TIME = dt.datetime(2026, 11, 28, 6, 0, 0)


def guid(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)))


def order_number(serial: int) -> str:
    """D365's auto-number shape: ORD-01001-X2K9QF."""
    digest = hashlib.sha1(f"order-{serial}".encode()).digest()
    suffix = base64.b32encode(digest).decode()[:6].replace("O", "P").replace("I", "J")
    return f"ORD-{serial:05d}-{suffix}"


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Product:
    number: str
    name: str
    product_type: str
    provider: str
    sku: str
    recurring: bool
    billing_frequency: str
    provisioning_unit: str
    term: str
    min_quantity: int | None
    max_quantity: int | None

    @property
    def unit(self) -> str:
        if not self.recurring:
            return "Each"
        return "Monthly" if self.provisioning_unit == "Monthly" else "Annual"


def _pc(number: str, name: str, sku: str, freq: str, unit: str, term: str, lo=1, hi=None) -> Product:
    return Product(number, name, "CSP", "partner_center", sku, True, freq, unit, term, lo, hi)


PRODUCTS = [
    # Partner Center (NCE) licence offers: product id : sku id.
    _pc("M365-BB-M", "Microsoft 365 Business Basic (Monthly)", "CFQ7TTC0LH18:0001", "Monthly", "Monthly", "P1M", 1, 300),
    _pc("M365-BB-A", "Microsoft 365 Business Basic (Annual)", "CFQ7TTC0LH18:0001", "Annually", "Annual", "P1Y", 1, 300),
    _pc("M365-BS-M", "Microsoft 365 Business Standard (Monthly)", "CFQ7TTC0LDPB:0001", "Monthly", "Monthly", "P1M", 1, 300),
    _pc("M365-BS-A", "Microsoft 365 Business Standard (Annual)", "CFQ7TTC0LDPB:0001", "Annually", "Annual", "P1Y", 1, 300),
    _pc("M365-BP-M", "Microsoft 365 Business Premium (Monthly)", "CFQ7TTC0LCHC:0002", "Monthly", "Monthly", "P1M", 1, 300),
    _pc("M365-BP-A1M", "Microsoft 365 Business Premium (Annual, billed monthly)", "CFQ7TTC0LCHC:0002", "Monthly", "Annual", "P1Y", 1, 300),
    _pc("M365-APPS-M", "Microsoft 365 Apps for business (Monthly)", "CFQ7TTC0LH1G:0001", "Monthly", "Monthly", "P1M", 1, 300),
    _pc("O365-E1-M", "Office 365 E1 (Monthly)", "CFQ7TTC0LF8Q:0001", "Monthly", "Monthly", "P1M"),
    _pc("O365-E3-A", "Office 365 E3 (Annual)", "CFQ7TTC0LF8R:0001", "Annually", "Annual", "P1Y"),
    _pc("M365-E3-A", "Microsoft 365 E3 (Annual)", "CFQ7TTC0LFLX:0001", "Annually", "Annual", "P1Y"),
    _pc("M365-E5-3Y", "Microsoft 365 E5 (3 Year)", "CFQ7TTC0LFLZ:0002", "Triennial", "Annual", "P3Y"),
    _pc("EXO-P1-M", "Exchange Online (Plan 1) (Monthly)", "CFQ7TTC0LH16:0001", "Monthly", "Monthly", "P1M"),
    _pc("EXO-P1-A", "Exchange Online (Plan 1) (Annual)", "CFQ7TTC0LH16:0001", "Annually", "Annual", "P1Y"),
    _pc("TEAMS-ESS-M", "Microsoft Teams Essentials (Monthly)", "CFQ7TTC0JN4R:0002", "Monthly", "Monthly", "P1M", 1, 300),
    _pc("PBI-PRO-M", "Power BI Pro (Monthly)", "CFQ7TTC0LHSF:0001", "Monthly", "Monthly", "P1M"),
    _pc("PBI-PRO-A", "Power BI Pro (Annual)", "CFQ7TTC0LHSF:0001", "Annually", "Annual", "P1Y"),
    _pc("MDB-M", "Microsoft Defender for Business (Monthly)", "CFQ7TTC0HX56:0002", "Monthly", "Monthly", "P1M", 1, 300),
    _pc("VISIO-P2-A", "Visio Plan 2 (Annual)", "CFQ7TTC0HD32:0002", "Annually", "Annual", "P1Y"),
    # Our own services: provisioned by a person (provider "manual").
    Product("SUP-PREM-M", "Premium Support Plan (Monthly)", "Support Contract", "manual", "", True, "Monthly", "Monthly", "P1M", 1, 1),
    Product("SUP-STD-A", "Standard Support Plan (Annual)", "Support Contract", "manual", "", True, "Annually", "Annual", "P1Y", 1, 1),
    Product("MS-MGD-M", "Managed IT Services (per user, Monthly)", "Managed Services", "manual", "", True, "Monthly", "Monthly", "P1M", 5, None),
    Product("MS-BACKUP-M", "Managed Backup for Microsoft 365 (per user, Monthly)", "Managed Services", "manual", "", True, "Monthly", "Monthly", "P1M", 1, None),
    Product("ONB-SETUP", "Microsoft 365 Onboarding and Setup (one-time)", "Managed Services", "manual", "", False, "", "", "", 1, 1),
    Product("MIG-EMAIL", "Email Migration (per mailbox, one-time)", "Managed Services", "manual", "", False, "", "", "", 1, None),
]
CATALOG = {p.number: p for p in PRODUCTS}


# --------------------------------------------------------------------------- customers


@dataclass(frozen=True)
class Mapping:
    customer_name: str
    customer_id: str
    provider: str
    tenant: str


def tenant(name: str, n: int = 0) -> str:
    return guid("tenant", name, n)


def account_id(name: str) -> str:
    return guid("account", name)


MAPPED = [
    "Contoso Pharmaceuticals", "Fabrikam, Inc.", "Northwind Traders", "Tailspin Toys",
    "Adventure Works Cycles", "Alpine Ski House", "Coho Winery", "Lamna Healthcare Company",
    "Litware, Inc.", "Proseware, Inc.", "Consolidated Messenger", "Margie's Travel",
    "Graphic Design Institute", "Southridge Video", "Fourth Coffee", "Humongous Insurance",
    "VanArsdel, Ltd.", "Wingtip Toys", "Woodgrove Bank", "Best For You Organics Company",
    "Munson's Pickles and Preserves Farm", "A. Datum Corporation",
]
MAPPINGS = (
    [Mapping(name, "", "partner_center", tenant(name)) for name in MAPPED]
    # Matched by CRM account id (the Dataverse export carries _customerid_value).
    + [Mapping("Relecloud", account_id("Relecloud"), "partner_center", tenant("Relecloud"))]
    # Two CRM accounts named alike, no ids: AMBIGUOUS_CUSTOMER for Partner Center lines.
    + [
        Mapping("Blue Yonder Airlines", "", "partner_center", tenant("Blue Yonder Airlines", 1)),
        Mapping("Blue Yonder Airlines", "", "partner_center", tenant("Blue Yonder Airlines", 2)),
    ]
    # "Trey Research" is deliberately absent: its Partner Center order waits for a mapping.
)


# --------------------------------------------------------------------------- orders


@dataclass
class Line:
    product: str | None  # our product number; None for a write-in
    quantity: str
    price: str
    volume_discount: str = "0"
    manual_discount: str = "0"
    tax: str = "0"
    expect: str = "provisioned"
    extended: str | None = None  # given only to make it wrong (AMOUNT_MISMATCH)
    price_cell: str | None = None  # the raw Price Per Unit cell, when not the number
    money_as_text: bool = False
    write_in: str | None = None
    unknown_name: str | None = None  # an Existing Product that is not in the catalog
    currency: str | None = None  # a line currency other than the order's
    billing_frequency: str = ""
    provision_as: str = ""
    provisioning_unit: str = ""
    fulfill_order: str = ""
    billing_contract: str = ""
    contract_type: str = ""
    duplicate_of_previous: bool = False
    note: str = ""

    def extended_amount(self) -> Decimal:
        if self.extended is not None:
            return Decimal(self.extended)
        q, p = Decimal(self.quantity), Decimal(self.price)
        value = q * (p - Decimal(self.volume_discount)) - Decimal(self.manual_discount) + Decimal(self.tax)
        return value.quantize(CENT)


@dataclass
class Order:
    serial: int
    source: str  # "xlsx" | "dataverse"
    customer: str
    title: str
    currency: str
    state: str
    status_reason: str
    payment_terms: str
    exercises: str
    lines: list[Line] = field(default_factory=list)

    @property
    def number(self) -> str:
        return order_number(self.serial)

    @property
    def order_id(self) -> str:
        return guid("salesorder", self.serial)

    def line_id(self, index: int) -> str:
        return guid("salesorderdetail", self.serial, index)


HELD = "held ORDER_HAS_REJECTED_LINES"
NPM = "held NEEDS_PROVIDER_MAPPING"

XLSX_ORDERS = [
    Order(1001, "xlsx", "Contoso Pharmaceuticals", "Contoso - Business Premium rollout", "US Dollar",
          "Active", "New", "Net 30",
          "clean; one order in four billing contracts (CSP Monthly — Business Premium P1Y billed "
          "monthly and Exchange P1M —, CSP Annually, Support Contract Monthly, one-time)",
          [
              Line("M365-BP-A1M", "40", "22.00", billing_frequency="Monthly", provisioning_unit="Annual",
                   provision_as="New", contract_type="Recurring"),
              Line("PBI-PRO-A", "10", "168.00", volume_discount="8.40", billing_frequency="Annually"),
              Line("EXO-P1-M", "6", "4.80"),
              Line("SUP-PREM-M", "1", "1299.00", money_as_text=True),
              Line("ONB-SETUP", "1", "1500.00", manual_discount="250.00", contract_type="Non-Recurring"),
          ]),
    Order(1002, "xlsx", "Fabrikam, Inc.", "Fabrikam - Q4 new hires", "US Dollar",
          "Submitted", "In Progress", "Net 45",
          "clean; recurring Partner Center + manual managed service + one-time migration",
          [
              Line("M365-BS-M", "25", "15.00", manual_discount="25.00"),
              Line("TEAMS-ESS-M", "5", "4.80"),
              Line("MIG-EMAIL", "30", "25.00", money_as_text=True),
              Line("MS-BACKUP-M", "30", "3.50"),
          ]),
    Order(1003, "xlsx", "Northwind Traders", "Northwind - enterprise refresh", "US Dollar",
          "Active", "Pending", "2% 10, Net 30",
          "clean; annual and three-year (Triennial) terms, volume and manual discounts",
          [
              Line("M365-E3-A", "120", "432.00", volume_discount="21.60", billing_frequency="Annually",
                   provisioning_unit="Annual"),
              Line("VISIO-P2-A", "8", "180.00"),
              Line("M365-E5-3Y", "15", "2052.00"),
              Line("MS-MGD-M", "120", "45.00", manual_discount="400.00"),
              Line("SUP-STD-A", "1", "4800.00"),
          ]),
    Order(1004, "xlsx", "Tailspin Toys", "Tailspin Toys - store staff", "US Dollar",
          "Active", "New", "",
          "Fulfill Order = No: provisioned, order not fulfilled (provisioned_not_fulfilled); "
          "no payment terms (default Net 30)",
          [
              Line("M365-BB-M", "12", "7.20", fulfill_order="No"),
              Line("MDB-M", "12", "3.60", fulfill_order="No"),
          ]),
    Order(1005, "xlsx", "Adventure Works Cycles", "Adventure Works - annual renewal", "US Dollar",
          "Fulfilled", "Complete", "Net 30",
          "R1: already fulfilled in D365",
          [
              Line("M365-BS-A", "20", "150.00", expect="skipped ORDER_ALREADY_FULFILLED"),
              Line("EXO-P1-A", "10", "48.00", expect="skipped ORDER_ALREADY_FULFILLED"),
          ]),
    Order(1006, "xlsx", "Alpine Ski House", "Alpine Ski House - season staff", "US Dollar",
          "Invoiced", "Invoiced", "Net 30",
          "R1: invoiced",
          [
              Line("M365-BB-A", "30", "72.00", expect="skipped ORDER_INVOICED"),
              Line("SUP-STD-A", "1", "4800.00", expect="skipped ORDER_INVOICED"),
          ]),
    Order(1007, "xlsx", "Coho Winery", "Coho Winery - M365 migration", "US Dollar",
          "Canceled", "No Money", "Net 30",
          "R1: canceled",
          [
              Line("M365-BP-M", "10", "26.40", expect="skipped ORDER_CANCELED"),
              Line("ONB-SETUP", "1", "1500.00", expect="skipped ORDER_CANCELED"),
          ]),
    Order(1008, "xlsx", "Lamna Healthcare Company", "Lamna - support renewal", "US Dollar",
          "Active", "New", "Net 30",
          "INVALID_VALUE: Price Per Unit written `4.800,00` (not en-US)",
          [
              Line("M365-BP-M", "30", "26.40", expect=HELD),
              Line("SUP-STD-A", "1", "4800.00", price_cell="4.800,00", money_as_text=True,
                   expect="rejected INVALID_VALUE", note="price_per_unit `4.800,00`"),
          ]),
    Order(1009, "xlsx", "Litware, Inc.", "Litware - intranet project", "US Dollar",
          "Active", "New", "Net 30",
          "WRITE_IN_PRODUCT",
          [
              Line("M365-BS-A", "15", "150.00", expect=HELD),
              Line(None, "1", "6500.00", write_in="SharePoint intranet build (fixed fee)",
                   expect="rejected WRITE_IN_PRODUCT"),
          ]),
    Order(1010, "xlsx", "Proseware, Inc.", "Proseware - licence top-up", "US Dollar",
          "Active", "New", "Net 30",
          "INVALID_QUANTITY: fractional Partner Center quantity; quantity above max_quantity (300)",
          [
              Line("M365-BB-M", "2.5", "7.20", expect="rejected INVALID_QUANTITY", note="2.5 seats"),
              Line("TEAMS-ESS-M", "350", "4.80", expect="rejected INVALID_QUANTITY", note="350 > 300"),
              Line("PBI-PRO-M", "3", "16.80", expect=HELD),
          ]),
    Order(1011, "xlsx", "Consolidated Messenger", "Consolidated Messenger - couriers", "US Dollar",
          "Active", "New", "Net 30",
          "CURRENCY_MISMATCH: the last line is in Canadian Dollar",
          [
              Line("M365-BS-M", "10", "15.00", expect=HELD),
              Line("EXO-P1-M", "5", "4.80", expect=HELD),
              Line("PBI-PRO-M", "2", "20.20", currency="Canadian Dollar", expect="rejected CURRENCY_MISMATCH"),
          ]),
    Order(1012, "xlsx", "Margie's Travel", "Margie's Travel - agents", "US Dollar",
          "Active", "New", "Net 30",
          "DUPLICATE_LINE: one order product exported twice (same GUID)",
          [
              Line("M365-BP-M", "8", "26.40", expect="rejected DUPLICATE_LINE"),
              Line("M365-BP-M", "8", "26.40", expect="rejected DUPLICATE_LINE", duplicate_of_previous=True),
              Line("PBI-PRO-M", "2", "16.80", expect=HELD),
          ]),
    Order(1013, "xlsx", "Blue Yonder Airlines", "Blue Yonder - crew tablets", "US Dollar",
          "Active", "New", "Net 30",
          "AMBIGUOUS_CUSTOMER: two provider mappings with this name and no account id",
          [
              Line("M365-BP-M", "18", "26.40", expect="rejected AMBIGUOUS_CUSTOMER"),
              Line("MS-BACKUP-M", "18", "3.50", expect=HELD),
          ]),
    Order(1014, "xlsx", "Graphic Design Institute", "GDI - studio licences", "US Dollar",
          "Active", "New", "Net 30",
          "UNKNOWN_BILLING_CONTRACT: Billing Contract names a contract that does not exist",
          [
              Line("M365-BS-M", "8", "15.00", billing_contract="BC-00172 Graphic Design Institute CSP Monthly",
                   expect="rejected UNKNOWN_BILLING_CONTRACT"),
              Line("EXO-P1-M", "4", "4.80", expect=HELD),
          ]),
    Order(1015, "xlsx", "Southridge Video", "Southridge Video - editors", "US Dollar",
          "Active", "New", "Net 30",
          "EXISTING_SUBSCRIPTION_NOT_FOUND: Provision As = Existing on a first run",
          [
              Line("M365-BB-M", "5", "7.20", provision_as="Existing", expect="rejected EXISTING_SUBSCRIPTION_NOT_FOUND"),
              Line("PBI-PRO-M", "2", "16.80", provision_as="New", expect=HELD),
          ]),
    Order(1016, "xlsx", "Trey Research", "Trey Research - lab staff", "US Dollar",
          "Active", "New", "Net 30",
          "NEEDS_PROVIDER_MAPPING: customer has no Partner Center mapping (the manual line waits too)",
          [
              Line("M365-BP-M", "22", "26.40", expect=NPM),
              Line("MS-BACKUP-M", "22", "3.50", expect=NPM),
          ]),
    Order(1017, "xlsx", "Trey Research", "Trey Research - managed services", "US Dollar",
          "Active", "New", "Net 30",
          "unmapped customer, manual lines only: needs no mapping, goes through",
          [
              Line("MS-MGD-M", "22", "45.00"),
              Line("ONB-SETUP", "1", "1500.00"),
          ]),
    Order(1018, "xlsx", "Fourth Coffee", "Fourth Coffee - cafes", "Canadian Dollar",
          "Submitted", "In Progress", "Net 30",
          "clean; Canadian Dollar with 13% HST in Tax",
          [
              Line("M365-BB-M", "15", "8.40", tax="16.38"),
              Line("M365-BS-A", "5", "180.00", tax="117.00"),
              Line("SUP-PREM-M", "1", "1450.00", tax="188.50"),
          ]),
    Order(1019, "xlsx", "Humongous Insurance", "Humongous Insurance - head office", "Pound Sterling",
          "Active", "Pending", "Net 30",
          "clean; Pound Sterling, 20% VAT on the managed service",
          [
              Line("M365-E3-A", "60", "339.60"),
              Line("O365-E1-M", "25", "9.60"),
              Line("MS-MGD-M", "60", "38.00", tax="456.00"),
              Line("PBI-PRO-A", "12", "132.00"),
          ]),
]

DATAVERSE_ORDERS = [
    Order(2001, "dataverse", "Relecloud", "Relecloud - E5 three-year deal", "USD", "0", "1", "1",
          "clean; customer matched by CRM account id; triennial + annual + support",
          [
              Line("M365-E5-3Y", "25", "2052.00"),
              Line("PBI-PRO-A", "25", "168.00"),
              Line("SUP-STD-A", "1", "4800.00"),
          ]),
    Order(2002, "dataverse", "VanArsdel, Ltd.", "VanArsdel - office expansion", "USD", "1", "3", "3",
          "clean; Submitted / In Progress, Net 45",
          [
              Line("M365-BS-M", "40", "15.00", manual_discount="60.00"),
              Line("M365-APPS-M", "10", "9.90"),
              Line("MS-BACKUP-M", "50", "3.50"),
          ]),
    Order(2003, "dataverse", "Wingtip Toys", "Wingtip Toys - ERP pilot", "USD", "0", "2", "",
          "UNKNOWN_PRODUCT: product number not in the catalog",
          [
              Line("M365-BB-A", "10", "72.00", expect=HELD),
              Line(None, "3", "84.00", unknown_name="D365-BC-ESS-M", expect="rejected UNKNOWN_PRODUCT",
                   note="productnumber `D365-BC-ESS-M`"),
          ]),
    Order(2004, "dataverse", "Woodgrove Bank", "Woodgrove Bank - branch staff", "USD", "0", "1", "4",
          "AMOUNT_MISMATCH: extended amount is one seat short",
          [
              Line("M365-E3-A", "200", "432.00", volume_discount="21.60", expect=HELD),
              Line("O365-E3-A", "50", "276.00", extended="13524.00", expect="rejected AMOUNT_MISMATCH",
                   note="13524.00 ≠ 50 × 276.00 = 13800.00"),
          ]),
    Order(2005, "dataverse", "Best For You Organics Company", "Best For You - onboarding", "USD", "0", "1", "2",
          "clean; recurring + one-time, payment terms 2% 10, Net 30",
          [
              Line("M365-BP-M", "14", "26.40"),
              Line("ONB-SETUP", "1", "1500.00"),
          ]),
    Order(2006, "dataverse", "A. Datum Corporation", "A. Datum - draft", "USD", "0", "1", "1",
          "order without lines: ignored with a warning, not counted", []),
    Order(2007, "dataverse", "Munson's Pickles and Preserves Farm", "Munson's - farm office", "USD", "1", "3", "1",
          "clean; monthly and annual Partner Center terms",
          [
              Line("M365-BB-M", "9", "7.20"),
              Line("EXO-P1-A", "3", "48.00"),
          ]),
]

ALL_ORDERS = XLSX_ORDERS + DATAVERSE_ORDERS


# --------------------------------------------------------------------------- writers


def write_reference() -> None:
    ref = HERE / "reference"
    ref.mkdir(exist_ok=True)
    with (ref / "products.csv").open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["product_number", "product_name", "product_type", "provider", "provider_sku",
                      "recurring", "billing_frequency", "provisioning_unit", "term_duration",
                      "min_quantity", "max_quantity"])
        for p in PRODUCTS:
            out.writerow([p.number, p.name, p.product_type, p.provider, p.sku,
                          "true" if p.recurring else "false", p.billing_frequency,
                          p.provisioning_unit, p.term,
                          "" if p.min_quantity is None else p.min_quantity,
                          "" if p.max_quantity is None else p.max_quantity])
    with (ref / "provider_accounts.csv").open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["customer_name", "customer_id", "provider", "provider_customer_id"])
        for m in MAPPINGS:
            out.writerow([m.customer_name, m.customer_id, m.provider, m.tenant])


def money_text(value: Decimal, currency: str) -> str:
    symbol = {"US Dollar": "$", "Canadian Dollar": "CA$", "Pound Sterling": "£"}[currency]
    return f"{symbol}{value:,.2f}"


def _money_cell(value: Decimal, currency: str, as_text: bool) -> object:
    return money_text(value, currency) if as_text else value


XLSX_HEADERS = [
    "(Do Not Modify) Order Product", "(Do Not Modify) Row Checksum", "(Do Not Modify) Modified On",
    "Order ID", "Name (Order)", "Potential Customer (Order)", "Status (Order)",
    "Status Reason (Order)", "Payment Terms (Order)", "Line Item Number",
    "Product ID (Existing Product)", "Existing Product", "Write-In Product", "Quantity", "Unit",
    "Currency", "Price Per Unit", "Volume Discount", "Manual Discount", "Tax", "Extended Amount",
    "Contract Type", "Billing Frequency", "Billing Contract", "Provision As", "Provisioning Unit",
    "Fulfill Order", "Owner",
]
MONEY_HEADERS = {"Price Per Unit", "Volume Discount", "Manual Discount", "Tax", "Extended Amount"}
OWNERS = ["Megan Bowen", "Alex Wilber", "Diego Siciliani", "Lidia Holloway"]


def _checksum(line_id: str) -> str:
    return base64.b64encode(hashlib.sha512(line_id.encode()).digest()).decode()


def write_xlsx() -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "Order Products"
    ws.append(XLSX_HEADERS)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    previous: tuple[str, str, dt.datetime, int] | None = None
    for o in XLSX_ORDERS:
        number = 0
        for index, line in enumerate(o.lines, start=1):
            if line.duplicate_of_previous and previous is not None:
                line_id, checksum, modified, number = previous  # the same row, exported twice
            else:
                number += 1
                line_id = o.line_id(index)
                checksum = _checksum(line_id)
                modified = FIXED_TIME - dt.timedelta(days=(o.serial % 9) + 1, minutes=7 * index)
            previous = (line_id, checksum, modified, number)
            currency = line.currency or o.currency
            product = CATALOG.get(line.product or "")
            quantity = Decimal(line.quantity)
            price = line.price_cell if line.price_cell is not None else _money_cell(
                Decimal(line.price), currency, line.money_as_text)
            row = [
                line_id, checksum, modified, o.number, o.title, o.customer, o.state,
                o.status_reason, o.payment_terms or None, number,
                product.number if product else None,
                product.name if product else None,
                line.write_in,
                int(quantity) if quantity == quantity.to_integral_value() else quantity,
                product.unit if product else "Each",
                currency,
                price,
                Decimal(line.volume_discount),
                Decimal(line.manual_discount),
                Decimal(line.tax),
                _money_cell(line.extended_amount(), currency, line.money_as_text),
                line.contract_type or None, line.billing_frequency or None,
                line.billing_contract or None, line.provision_as or None,
                line.provisioning_unit or None, line.fulfill_order or None,
                OWNERS[o.serial % len(OWNERS)],
            ]
            ws.append(row)
    fmt = {"(Do Not Modify) Modified On": "m/d/yyyy h:mm AM/PM"}
    for col, header in enumerate(XLSX_HEADERS, start=1):
        letter = get_column_letter(col)
        ws.column_dimensions[letter].width = max(12, min(len(header) + 4, 40))
        if col <= 3:
            ws.column_dimensions[letter].hidden = True
        number_format = fmt.get(header) or ('#,##0.00' if header in MONEY_HEADERS else None)
        if number_format:
            for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
                if not isinstance(cell.value, str):
                    cell.number_format = number_format
    ws.freeze_panes = "D2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(XLSX_HEADERS))}{ws.max_row}"

    hidden = wb.create_sheet("hiddenSheet")
    hidden.sheet_state = "hidden"
    hidden["A1"] = "salesorderdetail:" + guid("view", "Order Products")
    hidden["B1"] = "Order Products"
    hidden["A2"] = "Status (Order)"
    for col, label in enumerate(["Active", "Submitted", "Canceled", "Fulfilled", "Invoiced"], start=2):
        hidden.cell(row=2, column=col, value=label)
    hidden["A3"] = "Payment Terms (Order)"
    for col, label in enumerate(["Net 30", "2% 10, Net 30", "Net 45", "Net 60"], start=2):
        hidden.cell(row=3, column=col, value=label)
    wb.properties.creator = "Dynamics 365"
    wb.properties.created = FIXED_TIME
    target = HERE / "d365_order_products_export.xlsx"
    buffer = io.BytesIO()
    wb.save(buffer)
    target.write_bytes(_deterministic_zip(buffer.getvalue()))


def _deterministic_zip(data: bytes) -> bytes:
    """openpyxl stamps the save time into docProps/core.xml and the zip entries; pin both."""
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp.encode(), content)
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(entry, content)
    return out.getvalue()


def _dv_money(value: Decimal) -> str:
    return f"{value:.2f}"


def write_dataverse() -> None:
    formatted = "@OData.Community.Display.V1.FormattedValue"
    order_headers = [
        "@odata.etag", "salesorderid", "ordernumber", "name", "_customerid_value",
        f"_customerid_value{formatted}", "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname",
        "isocurrencycode", "statecode", "statuscode", "paymenttermscode",
    ]
    with (HERE / "dataverse_salesorders.csv").open("w", encoding="utf-8-sig", newline="") as handle:
        out = csv.writer(handle, delimiter=";", lineterminator="\r\n")
        out.writerow(order_headers)
        for o in DATAVERSE_ORDERS:
            out.writerow([f'W/"{4_100_000 + o.serial}"', o.order_id, o.number, o.title,
                          account_id(o.customer), o.customer, "account", o.currency,
                          o.state, o.status_reason, o.payment_terms])
    line_headers = [
        "@odata.etag", "salesorderdetailid", "_salesorderid_value", "lineitemnumber", "productnumber",
        "quantity", f"_uomid_value{formatted}", "priceperunit", "volumediscountamount",
        "manualdiscountamount", "tax", "extendedamount",
    ]
    with (HERE / "dataverse_salesorderdetails.csv").open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(line_headers)
        for o in DATAVERSE_ORDERS:
            for index, line in enumerate(o.lines, start=1):
                product = CATALOG.get(line.product or "")
                out.writerow([
                    f'W/"{5_200_000 + o.serial * 10 + index}"', o.line_id(index), o.order_id, index,
                    product.number if product else line.unknown_name,
                    f"{Decimal(line.quantity):.5f}",
                    product.unit if product else "Monthly",
                    _dv_money(Decimal(line.price)), _dv_money(Decimal(line.volume_discount)),
                    _dv_money(Decimal(line.manual_discount)), _dv_money(Decimal(line.tax)),
                    _dv_money(line.extended_amount()),
                ])


# --------------------------------------------------------------------------- expectations


def _contract_key(o: Order, line: Line) -> tuple[str, ...]:
    p = CATALOG[line.product or ""]
    freq = (line.billing_frequency or p.billing_frequency) if p.recurring else ""
    currency = {"US Dollar": "USD", "Canadian Dollar": "CAD", "Pound Sterling": "GBP"}.get(o.currency, o.currency)
    return (o.customer, "Recurring" if p.recurring else "Non-Recurring", p.product_type, freq, currency)


def expected_summary() -> dict[str, object]:
    lines: Counter[str] = Counter()
    orders: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    contracts: set[tuple[str, ...]] = set()
    subscriptions = one_time = 0
    for o in ALL_ORDERS:
        if not o.lines:
            continue
        for line in o.lines:
            bucket, _, code = line.expect.partition(" ")
            lines[bucket] += 1
            if code:
                reasons[code] += 1
            if bucket == "provisioned":
                contracts.add(_contract_key(o, line))
                if CATALOG[line.product or ""].recurring:
                    subscriptions += 1
                else:
                    one_time += 1
        buckets = {line.expect.split(" ")[0] for line in o.lines}
        if buckets == {"skipped"}:
            orders["skipped"] += 1
        elif buckets == {"provisioned"}:
            no = any(line.fulfill_order == "No" for line in o.lines)
            orders["provisioned_not_fulfilled" if no else "fulfilled"] += 1
        else:
            orders["held"] += 1
    lines["input"] = sum(lines.values())
    orders["input"] = sum(orders.values())
    return {
        "lines": lines, "orders": orders, "reasons": reasons, "contracts": len(contracts),
        "subscriptions": subscriptions, "one_time": one_time,
    }


def _line_product(line: Line) -> str:
    if line.write_in:
        return f"write-in: {line.write_in}"
    if line.unknown_name:
        return line.unknown_name
    return line.product or ""


DV_STATES = {"0": "Active", "1": "Submitted", "2": "Canceled", "3": "Fulfilled", "4": "Invoiced"}


def write_readme() -> None:
    s = expected_summary()
    lines, orders, reasons = s["lines"], s["orders"], s["reasons"]
    n_pc = sum(p.provider == "partner_center" for p in PRODUCTS)
    out = [
        "# Sample data",
        "",
        "Generated by `build_sample_data.py` (deterministic: run it again to rebuild every file here).",
        "`make run` runs the pipeline on the three order files (listed by name — not a glob, which would",
        "also pick up this README and the build script) with the reference data:",
        "",
        "    w365etl run sample_data/d365_order_products_export.xlsx \\",
        "        sample_data/dataverse_salesorders.csv sample_data/dataverse_salesorderdetails.csv \\",
        "        --reference sample_data/reference --config sample_data/w365etl.toml",
        "",
        "The catalog ids are real Microsoft NCE product:sku ids; tenants and CRM ids are made-up GUIDs.",
        "Outcomes below are those of a **first run** on an empty database (nothing provisioned",
        "before, no billing contracts or subscriptions yet).",
        "",
        "| file | what it is |",
        "|---|---|",
        f"| `reference/products.csv` | catalog: {n_pc} Partner Center NCE offers (real product:sku ids, "
        "P1M/P1Y/P3Y; Business Premium also as P1Y billed monthly), 2 support contracts, 2 managed "
        "services, 2 one-time items (provider `manual`) |",
        "| `reference/provider_accounts.csv` | Partner Center tenant per customer; `Relecloud` matched by CRM "
        "account id; `Blue Yonder Airlines` twice without id (ambiguous); `Trey Research` missing |",
        "| `d365_order_products_export.xlsx` | D365 display-name *Export to Excel* of the Order Products view: flat, "
        "hidden `(Do Not Modify)` columns, hidden `hiddenSheet`, option sets as labels, money as numbers and as "
        "text (`$1,299.00`), unknown column `Owner` |",
        "| `dataverse_salesorders.csv` | Dataverse Web API orders (logical names; `;`-delimited, UTF-8 with BOM; "
        "option sets as codes; unknown columns `@odata.etag`, `…lookuplogicalname`) |",
        "| `dataverse_salesorderdetails.csv` | the lines of those orders (logical names, comma, UTF-8), joined on "
        "`_salesorderid_value` = `salesorderid` |",
        "",
        "## Orders and expected line outcomes",
        "",
        "Line outcome = the line's bucket in `summary.json` and, for anything but `provisioned`, the reason code "
        "of its exception row. In the xlsx export order 01012's first line appears twice (same "
        "`(Do Not Modify) Order Product`, same Line Item Number): both rows are listed.",
        "",
        "| order | file | customer | state | exercises | line | product | qty | expected |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in ALL_ORDERS:
        source = "xlsx" if o.source == "xlsx" else "dataverse"
        if not o.lines:
            out.append(f"| {o.number} | {source} | {o.customer} | {DV_STATES.get(o.state, o.state)} ({o.state}) | {o.exercises} | — | — | — | "
                       "ignored (warning), not counted |")
            continue
        number = 0
        state = o.state if o.source == "xlsx" else f"{DV_STATES[o.state]} ({o.state})"
        for index, line in enumerate(o.lines, start=1):
            head = (f"| {o.number} | {source} | {o.customer} | {state} | {o.exercises} "
                    if index == 1 else "| | | | | ")
            number += 0 if line.duplicate_of_previous else 1
            expect = line.expect + (f" ({line.note})" if line.note else "")
            out.append(f"{head}| {number} | {_line_product(line)} | {line.quantity} | {expect} |")
    out += [
        "",
        "Dataverse option-set codes: statecode 0 Active, 1 Submitted; statuscode 1 New, 2 Pending, "
        "3 In Progress; paymenttermscode 1 Net 30, 2 \"2% 10, Net 30\", 3 Net 45, 4 Net 60.",
        "",
        "## Expected first-run summary",
        "",
        "| lines | count |",
        "|---|---|",
    ]
    for key in ("input", "provisioned", "already_provisioned", "skipped", "held", "rejected", "failed"):
        out.append(f"| {key} | {lines.get(key, 0)} |")
    out += ["", "| orders | count |", "|---|---|"]
    for key in ("input", "fulfilled", "already_fulfilled", "provisioned_not_fulfilled", "held", "skipped", "failed"):
        out.append(f"| {key} | {orders.get(key, 0)} |")
    out += [
        "",
        "| other | count |",
        "|---|---|",
        "| customers_needing_provider_mapping | 1 (Trey Research, partner_center) |",
        f"| billing_contracts.created | {s['contracts']} |",
        "| billing_contracts.reused | 0 |",
        f"| subscriptions.created | {s['subscriptions']} |",
        "| subscriptions.updated | 0 |",
        f"| one_time_charges.created | {s['one_time']} |",
        "",
        "Line-level exception rows by reason (one row per line; the order without lines may add a "
        "warning row of its own):",
        "",
        "| reason | rows |",
        "|---|---|",
    ]
    for code, count in sorted(reasons.items()):
        out.append(f"| {code} | {count} |")
    out += [
        "",
        "Every line-level reason code a first run can produce appears at least once. Not produced on a "
        "first run: `LINE_CHANGED_AFTER_PROVISIONING` (needs an earlier run), `PROVIDER_ERROR` (the "
        "`record` and `sandbox` Partner Center adapters accept every line), the file-level codes. Run the same files a second time and every "
        f"provisioned line is `already_provisioned` ({lines['provisioned']}), the fulfilled orders count "
        "`already_fulfilled` (their export still says Active), and the rest repeats.",
        "",
    ]
    (HERE / "README.md").write_text("\n".join(out), encoding="utf-8")


def _check() -> None:
    """The data says what the README says: amounts consistent (R8) except where meant not to be,
    Partner Center quantities whole unless meant to be bad, every code present."""
    for o in ALL_ORDERS:
        for line in o.lines:
            p = CATALOG.get(line.product or "")
            q = Decimal(line.quantity)
            computed = (q * (Decimal(line.price) - Decimal(line.volume_discount))
                        - Decimal(line.manual_discount) + Decimal(line.tax))
            mismatch = abs(line.extended_amount() - computed) > CENT
            assert mismatch == line.expect.endswith("AMOUNT_MISMATCH"), (o.number, line)
            if p and p.provider == "partner_center" and q != q.to_integral_value():
                assert line.expect.endswith("INVALID_QUANTITY"), (o.number, line)
    codes = {line.expect.split(" ")[1] for o in ALL_ORDERS for line in o.lines if " " in line.expect}
    wanted = {
        "ORDER_ALREADY_FULFILLED", "ORDER_INVOICED", "ORDER_CANCELED", "INVALID_VALUE", "UNKNOWN_PRODUCT",
        "WRITE_IN_PRODUCT", "INVALID_QUANTITY", "AMOUNT_MISMATCH", "CURRENCY_MISMATCH", "DUPLICATE_LINE",
        "AMBIGUOUS_CUSTOMER", "UNKNOWN_BILLING_CONTRACT", "EXISTING_SUBSCRIPTION_NOT_FOUND",
        "ORDER_HAS_REJECTED_LINES", "NEEDS_PROVIDER_MAPPING",
    }
    assert codes == wanted, codes ^ wanted
    assert len({p.name for p in PRODUCTS}) == len(PRODUCTS)


def main() -> None:
    _check()
    write_reference()
    write_xlsx()
    write_dataverse()
    write_readme()


if __name__ == "__main__":
    main()
