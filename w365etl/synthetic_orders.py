"""Synthetic, realistic D365 sales-order exports — and what the product contract says a run makes of them.

``generate_orders(lines, seed)`` draws a flat D365 "Order Products" export (display names,
the hidden ``(Do Not Modify)`` columns, ``(Order)`` suffixes, option-set labels, money partly
as text) of exactly ``lines`` rows, its reference data, and a follow-up export of new orders
for the same customers. Everything is drawn column-wise with ``numpy.random.default_rng(seed)``
and assembled as Arrow string arrays (no Python loop per line, order or customer), so a
million lines take seconds, and the same seed always gives the same bytes.

Shape: about 4 lines per order and 50 orders per customer; Partner Center (monthly, annual,
annual billed monthly or quarterly, triennial, perpetual) and manual products (support
contracts, managed services, one-time work), some with quantity bounds; about 10 % of the
customers have no Partner Center mapping in ``reference/provider_accounts.csv``; most orders
Active or Submitted, some Fulfilled, Invoiced or Canceled; about 5 % bad rows. Every bad case
lives in an order of its own and is exactly one problem (a duplicated row makes two bad rows),
so what a run must do with it follows from the generation choices alone.

The oracle, :meth:`SyntheticExport.expected`, applies SPEC §3 (R1–R9) and §5 to those choices
for a sequence of runs on one fresh database and returns the counts of each run's
``summary.json``. It deliberately imports nothing from the pipeline (``w365etl.plan``,
``w365etl.domain``, ``w365etl.report``, ``flows``): it is an independent reading of the SPEC.
The interpretations it encodes:

* a rejected line has one exception row per problem (here always exactly one); a skipped line
  exactly one row with its R1 code; a held line exactly one row with its hold reason,
  ``ORDER_HAS_REJECTED_LINES`` winning over ``NEEDS_PROVIDER_MAPPING``;
* a money cell that cannot be read (``1.299,00`` under en-US) is ``INVALID_VALUE`` and nothing
  else: R8 is not checked against a guessed (zero) amount;
* in an order whose lines disagree on the currency, the odd line is the ``CURRENCY_MISMATCH``
  (such orders have at least three lines and exactly one odd line);
* ``Existing`` only finds subscriptions that existed before the run (R5), so an ``Existing``
  line whose subscription is created in the same run is ``EXISTING_SUBSCRIPTION_NOT_FOUND`` —
  and is provisioned by the next run that carries it;
* an order whose lines were all provisioned in earlier runs is ``already_fulfilled``, or
  ``provisioned_not_fulfilled`` when its Fulfill Order says No (R7).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

ORDERS_FILE = "orders.csv"
MORE_ORDERS_FILE = "more_orders.csv"
REFERENCE_DIR = "reference"
ALL_MAPPED_REFERENCE_DIR = "reference_all_mapped"
#: names of the two exports in ``RunSpec.files`` and ``truth["file"]``
ORDERS = "orders"
MORE_ORDERS = "more_orders"

FLAT_HEADERS = [
    "(Do Not Modify) Order Product", "(Do Not Modify) Row Checksum", "(Do Not Modify) Modified On",
    "Order ID", "Name (Order)", "Potential Customer (Order)", "Currency (Order)", "Status (Order)",
    "Status Reason (Order)", "Line Item Number", "Product ID", "Existing Product", "Write-In Product",
    "Quantity", "Unit", "Price Per Unit", "Volume Discount", "Manual Discount", "Tax", "Extended Amount",
    "Provision As", "Fulfill Order",
]
PRODUCT_COLUMNS = ["product_number", "product_name", "product_type", "provider", "provider_sku", "recurring",
                   "billing_frequency", "provisioning_unit", "term_duration", "min_quantity", "max_quantity"]
#: the summary.json keys the oracle predicts
SUMMARY_KEYS = ("lines", "orders", "customers_needing_provider_mapping", "billing_contracts", "subscriptions",
                "one_time_charges", "exceptions_by_reason")

# ---------------------------------------------------------------------------------------------
# the catalog (products.csv) and how lines of each product are drawn

_QTY_SEATS, _QTY_ONE, _QTY_USERS, _QTY_TB, _QTY_HOURS, _QTY_LICENSES = range(6)
#: product_number, product_name, product_type, provider, provider_sku, recurring, billing_frequency,
#: provisioning_unit, term_duration, min, max | list price (cents), quantity kind, unit cell, weight
_CATALOG = [
    ("M365-BB-M", "Microsoft 365 Business Basic (Monthly)", "CSP", "partner_center", "CFQ7TTC0LH18:0001", True,
     "Monthly", "Monthly", "P1M", 1, 300, 720, _QTY_SEATS, "Monthly", 10),
    ("M365-BS-M", "Microsoft 365 Business Standard (Monthly)", "CSP", "partner_center", "CFQ7TTC0LDPB:0001", True,
     "Monthly", "Monthly", "P1M", 1, 300, 1500, _QTY_SEATS, "Monthly", 8),
    ("M365-BP-A", "Microsoft 365 Business Premium (Annual)", "CSP", "partner_center", "CFQ7TTC0LCHC:0002", True,
     "Annually", "Annual", "P1Y", 1, 300, 26400, _QTY_SEATS, "Annual", 7),
    ("M365-BP-A1M", "Microsoft 365 Business Premium (Annual, billed monthly)", "CSP", "partner_center",
     "CFQ7TTC0LCHC:0002", True, "Monthly", "Annual", "P1Y", 1, 300, 2200, _QTY_SEATS, "Annual", 7),
    ("O365-E3-A", "Office 365 E3 (Annual)", "CSP", "partner_center", "CFQ7TTC0LF8R:0001", True,
     "Annually", "Annual", "P1Y", None, None, 27600, _QTY_SEATS, "Annual", 5),
    ("M365-E5-T", "Microsoft 365 E5 (3 years)", "CSP", "partner_center", "CFQ7TTC0LFLZ:0002", True,
     "Triennial", "Annual", "P3Y", None, None, 205200, _QTY_SEATS, "Annual", 2),
    ("EXO-P1-M", "Exchange Online (Plan 1) (Monthly)", "CSP", "partner_center", "CFQ7TTC0LH16:0001", True,
     "Monthly", "Monthly", "P1M", None, None, 480, _QTY_SEATS, "Monthly", 6),
    ("TEAMS-ESS-Q", "Microsoft Teams Essentials (Annual, billed quarterly)", "CSP", "partner_center",
     "CFQ7TTC0RQ8N:0001", True, "Quarterly", "Annual", "P1Y", 1, 300, 1200, _QTY_SEATS, "Annual", 3),
    ("WIN-SRV-STD", "Windows Server 2022 Standard - 16 Core (perpetual)", "CSP", "partner_center",
     "DG7GMGF0D65N:0003", False, None, None, None, None, None, 106900, _QTY_LICENSES, "Each", 2),
    ("SUP-STD-M", "Standard Support (Monthly)", "Support Contract", "manual", None, True,
     "Monthly", "Monthly", "P1M", None, None, 9950, _QTY_ONE, "Monthly", 6),
    ("SUP-PREM-A", "Premium Support (Annual)", "Support Contract", "manual", None, True,
     "Annually", "Annual", "P1Y", None, None, 480000, _QTY_ONE, "Annual", 2),
    ("MS-DESK-M", "Managed Desktop per user (Monthly)", "Managed Services", "manual", None, True,
     "Monthly", "Monthly", "P1M", 5, 1000, 3500, _QTY_USERS, "Monthly", 5),
    ("MS-BACKUP-Q", "Managed Backup per TB (billed quarterly)", "Managed Services", "manual", None, True,
     "Quarterly", "Monthly", "P1M", None, None, 4500, _QTY_TB, "Monthly", 3),
    ("ONB-SETUP", "Onboarding and Setup (one-time)", "Managed Services", "manual", None, False,
     None, None, None, None, None, 50000, _QTY_ONE, "Each", 4),
    ("PRO-SVC-HR", "Professional Services (hourly)", "Managed Services", "manual", None, False,
     None, None, None, None, None, 15000, _QTY_HOURS, "Hour", 4),
]
CATALOG = pd.DataFrame(_CATALOG, columns=[*PRODUCT_COLUMNS, "list_cents", "quantity_kind", "unit", "weight"])
_NUMBERS = CATALOG["product_number"].tolist()
_P = {number: i for i, number in enumerate(_NUMBERS)}
_AUTOMATIC = CATALOG["provider"].eq("partner_center").to_numpy()
_RECURRING = CATALOG["recurring"].to_numpy(dtype=bool)
_PRODUCT_TYPES = ["CSP", "Support Contract", "Managed Services"]
_FREQUENCIES = ["Monthly", "Quarterly", "Annually", "Triennial"]
_PTYPE = np.array([_PRODUCT_TYPES.index(t) for t in CATALOG["product_type"]])
_FREQ = np.array([_FREQUENCIES.index(f) if isinstance(f, str) else len(_FREQUENCIES)
                  for f in CATALOG["billing_frequency"]])
_BOUNDED_MAX_PC = np.array([_P[p] for p in ("M365-BB-M", "M365-BS-M", "M365-BP-A", "M365-BP-A1M", "TEAMS-ESS-Q")])
_RECURRING_PC = np.flatnonzero(_AUTOMATIC & _RECURRING)
_UNBOUNDED = np.array([_P[p] for p in ("EXO-P1-M", "O365-E3-A", "SUP-STD-M", "ONB-SETUP", "MS-BACKUP-Q")])
_MIN_BOUNDED = np.array([_P["MS-DESK-M"]])
_UNKNOWN = -1
_WRITE_IN = -2

_UNKNOWN_PRODUCTS = [("O365-E1-LEGACY", "Office 365 E1 (legacy, retired)", "Monthly", 800),
                     ("DYN-BC-ESS-M", "Dynamics 365 Business Central Essentials (Monthly)", "Monthly", 7000),
                     ("AZ-RI-D2S", "Azure Reserved VM Instance D2s v5 (1 year)", "Annual", 61300),
                     ("HW-SURF-LAP5", "Surface Laptop 5 13.5in", "Each", 129900)]
_WRITE_INS = ["Custom SharePoint migration", "On-site visit (travel)", "Third-party antivirus 1yr",
              "Firewall appliance configuration", "Data recovery (ad hoc)"]

_CURRENCIES = ["USD", "EUR", "GBP", "CAD", "AUD"]
_CURRENCY_NAMES = ["US Dollar", "Euro", "Pound Sterling", "Canadian Dollar", "Australian Dollar"]
_CURRENCY_SYMBOLS = ["$", "€", "£", "$", "$"]
_CURRENCY_WEIGHTS = np.array([0.78, 0.09, 0.07, 0.03, 0.03])
_TAX_PERMILLE = np.array([0, 190, 200, 130, 100])  # per currency: none, DE VAT, UK VAT, HST, GST

#: order states (statecode → label); R1 provisions 0 and 1 only
_STATE_LABELS = ["Active", "Submitted", "Canceled", "Fulfilled", "Invoiced"]
_STATE_WEIGHTS = np.array([0.70, 0.18, 0.02, 0.06, 0.04])
_SKIP_CODES = {2: "ORDER_CANCELED", 3: "ORDER_ALREADY_FULFILLED", 4: "ORDER_INVOICED"}
#: status reason labels per state (two choices each; informational only)
_STATUS_REASONS = [("New", "In Progress"), ("In Progress", "Pending"), ("No Money", "No Money"),
                   ("Complete", "Partial"), ("Invoiced", "Invoiced")]

# bad cases: at most one per order; each is exactly one problem with the listed reason code
_CASES = [
    # name, reason code, weight
    ("invalid_price", "INVALID_VALUE", 6), ("invalid_extended", "INVALID_VALUE", 3),
    ("invalid_tax", "INVALID_VALUE", 3), ("invalid_volume_discount", "INVALID_VALUE", 2),
    ("unknown_product", "UNKNOWN_PRODUCT", 10), ("write_in", "WRITE_IN_PRODUCT", 10),
    ("quantity_zero", "INVALID_QUANTITY", 5), ("quantity_negative", "INVALID_QUANTITY", 5),
    ("quantity_fractional_pc", "INVALID_QUANTITY", 5), ("quantity_above_max", "INVALID_QUANTITY", 5),
    ("quantity_below_min", "INVALID_QUANTITY", 4), ("amount_mismatch", "AMOUNT_MISMATCH", 14),
    ("currency_mismatch", "CURRENCY_MISMATCH", 12), ("duplicate_line", "DUPLICATE_LINE", 14),
]
CASE_NAMES = [name for name, _, _ in _CASES]
CASE_CODES = {name: code for name, code, _ in _CASES}
_C = {name: i for i, name in enumerate(CASE_NAMES)}
_CASE_WEIGHTS = np.array([w for _, _, w in _CASES], dtype=float)
_REASONS = sorted(set(CASE_CODES.values()))
_CASE_REASON = np.array([_REASONS.index(CASE_CODES[name]) for name in CASE_NAMES])
#: share of Active/Submitted orders with a bad case (≈ 5 % bad rows at ≈ 4 lines an order)
_BAD_ORDER_SHARE = 0.21
#: share of skipped orders that also carry a defect (R1 comes first: they are only skipped)
_SKIPPED_DEFECT_SHARE = 0.25

_PREFIXES = ["Contoso", "Fabrikam", "Northwind", "Adventure Works", "Tailspin", "Wide World", "Litware",
             "Proseware", "Fourth Coffee", "Alpine Ski House", "Blue Yonder", "Coho", "Lamna", "Margie's Travel",
             "Trey Research", "Woodgrove", "Wingtip", "Humongous", "Relecloud", "Lucerne", "A. Datum", "VanArsdel",
             "Munson's Pickles", "Southridge", "Consolidated", "Bellows", "Fincher", "Nod", "Lakeshore", "Bayside"]
_MIDDLES = ["Health", "Logistics", "Legal", "Dental", "Engineering", "Accounting", "Retail", "Foods", "Labs",
            "Media", "Energy", "Realty", "Consulting", "Bank", "Pharma", "Insurance", "Motors", "Studios",
            "Partners", "Systems"]
_SUFFIXES = ["Ltd", "Inc.", "LLC", "GmbH", "Pty Ltd", ", Inc.", "& Co.", "Group", "plc", "S.A."]
_ORDER_NAMES = ["New seats", "Renewal", "Add-on licences", "Q3 expansion", "Onboarding", "Support renewal",
                "Migration project", "Managed services", "True-up", "New office"]


# ---------------------------------------------------------------------------------------------
# the result and the oracle's interface


@dataclass(frozen=True)
class RunSpec:
    """One run of the flow, as the oracle sees it."""

    #: which exports the run reads: ``"orders"`` and/or ``"more_orders"``
    files: tuple[str, ...] = (ORDERS,)
    #: the run loads ``reference_all_mapped/`` (every customer mapped) instead of ``reference/``
    all_mapped: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class SyntheticExport:
    """Two flat exports, the reference data, and the generation choices behind every row.

    ``orders``, ``more_orders``: the export rows (columns ``FLAT_HEADERS``, text, "" = blank).
    ``truth``: one row per export row (orders first, then more_orders, in file order):
    ``file``, ``order`` (an id unique over both files), ``order_number``, ``line`` (the line's
    identity: a duplicated row shares its source's), ``guid``, ``customer`` (index into
    ``customers``), ``currency``, ``state`` (statecode), ``product`` (catalog number, NaN when
    unknown or write-in), ``known``, ``automatic``, ``recurring``, ``existing`` (Provision As =
    Existing), ``fulfill``, ``case`` and ``problem`` (the row's own problem and its reason code,
    NaN when none). ``customers``: ``customer_name``, ``mapping_name`` (as provider_accounts.csv
    spells it), ``currency``, ``is_mapped``, ``tenant``. ``products``: products.csv.
    """

    seed: int
    lines: int
    orders: pd.DataFrame
    more_orders: pd.DataFrame
    truth: pd.DataFrame
    customers: pd.DataFrame
    products: pd.DataFrame

    def expected(self, *runs: RunSpec) -> list[dict]:
        """The ``summary.json`` counts (``SUMMARY_KEYS``; ``exceptions_by_reason`` without zeros) of
        each run in turn, on a database that starts empty; a dry run changes nothing."""
        state, results = _State.empty(), []
        mapped = self.customers["is_mapped"].to_numpy(dtype=bool)
        for spec in runs:
            summary, after = _simulate(self.truth, mapped, spec, state)
            results.append(summary)
            if not spec.dry_run:
                state = after
        return results

    def expected_scenario(self) -> dict[str, dict]:
        """The standard scenario: a dry run, the first run, an identical re-run, a run with every
        customer mapped and the follow-up export added, and an identical re-run of that."""
        names = ["dry_run", "first", "rerun", "mapped", "mapped_rerun"]
        mapped = RunSpec(files=(ORDERS, MORE_ORDERS), all_mapped=True)
        runs = self.expected(RunSpec(dry_run=True), RunSpec(), RunSpec(), mapped, mapped)
        return dict(zip(names, runs, strict=True))


def comparable(summary: dict) -> dict:
    """The part of a real ``summary.json`` the oracle predicts (zero exception counts dropped)."""
    out = {key: summary[key] for key in SUMMARY_KEYS}
    out["exceptions_by_reason"] = {code: n for code, n in sorted(summary["exceptions_by_reason"].items()) if n}
    return out


# ---------------------------------------------------------------------------------------------
# Arrow text helpers: whole columns at a time


def _strings(values: Sequence[str]) -> pa.Array:
    return pa.array(list(values), type=pa.string())


def _itos(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _if(mask: np.ndarray, yes: pa.Array | str, no: pa.Array | str) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), yes, no)


def _take(labels: Sequence[str] | pa.Array, index: np.ndarray) -> pa.Array:
    array = labels if isinstance(labels, pa.Array) else _strings(labels)
    return array.take(pa.array(np.asarray(index, dtype=np.int64)))


def _pad(values: pa.Array, width: int) -> pa.Array:
    return pc.utf8_lpad(values, width=width, padding="0")


def _override(base: pa.Array, where: np.ndarray, make: Callable[[np.ndarray], pa.Array]) -> pa.Array:
    """``base`` with the cells at ``where`` replaced by ``make(positions)`` (computed for those only)."""
    positions = np.flatnonzero(where)
    if not len(positions):
        return base
    index = np.arange(len(base))
    index[positions] = len(base) + np.arange(len(positions))
    return pa.concat_arrays([base, make(positions)]).take(pa.array(index))


def _ascii(codes: np.ndarray) -> pa.Array:
    """Rows of ASCII byte codes (n × width) as strings."""
    width = codes.shape[1]
    return pc.cast(pa.array(np.ascontiguousarray(codes, dtype=np.uint8).view(f"S{width}").ravel()), pa.string())


def _random_codes(rng: np.random.Generator, n: int, width: int, alphabet: str) -> np.ndarray:
    letters = np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)
    return letters[rng.integers(0, len(letters), size=(n, width), dtype=np.uint8)]


def _random_text(rng: np.random.Generator, n: int, width: int, alphabet: str) -> pa.Array:
    return _ascii(_random_codes(rng, n, width, alphabet))


def _guid_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random version-4 GUIDs (lower-case, hyphenated) as ASCII codes."""
    random = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16)
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2], nibbles[:, 1::2] = random >> 4, random & 15
    nibbles[:, 12] = 4
    nibbles[:, 16] = 8 + (nibbles[:, 16] & 3)
    codes = np.full((n, 36), ord("-"), dtype=np.uint8)
    codes[:, [i for i in range(36) if i not in (8, 13, 18, 23)]] = np.frombuffer(b"0123456789abcdef", np.uint8)[nibbles]
    return codes


def _guids(rng: np.random.Generator, n: int) -> pa.Array:
    return _ascii(_guid_codes(rng, n))


def _grouped(whole: np.ndarray, separator: str) -> pa.Array:
    """Non-negative integers with thousands grouped: "1,299", "12,000,000"."""
    groups = [_itos((whole // 1000**k) % 1000) for k in range(3)]
    padded = [_pad(group, 3) for group in groups]
    top = _itos(whole // 1000**3)
    return _if(whole < 1000, groups[0], _if(
        whole < 1000**2, _join(groups[1], separator, padded[0]), _if(
            whole < 1000**3, _join(groups[2], separator, padded[1], separator, padded[0]),
            _join(top, separator, padded[2], separator, padded[1], separator, padded[0]))))


_CENTS = [f"{cents:02d}" for cents in range(100)]


def _money(cents: np.ndarray, style: str = "plain", symbols: pa.Array | None = None) -> pa.Array:
    """Cents as money text: ``plain`` "-1299.50", ``symbol`` "$1,299.50", ``de`` "1.299,50"
    (the last is what a German-locale export writes, and not a number under en-US)."""
    cents = np.asarray(cents, dtype=np.int64)
    whole, fraction = np.abs(cents) // 100, _take(_CENTS, np.abs(cents) % 100)
    if style == "plain":
        body = _join(_itos(whole), ".", fraction)
    elif style == "symbol":
        body = _join(symbols, _grouped(whole, ","), ".", fraction)
    else:
        body = _join(_grouped(whole, "."), ",", fraction)
    return _override(body, cents < 0, lambda i: _join("-", body.take(pa.array(i))))


def _quantity(tenths: np.ndarray, long_form: np.ndarray) -> pa.Array:
    """Quantities kept in tenths: "10", "2.5", or as D365 writes them, "10.00000"."""
    magnitude = np.abs(tenths)
    whole = _itos(magnitude // 10)

    def decimals(suffix: str) -> Callable[[np.ndarray], pa.Array]:
        return lambda i: _join(whole.take(pa.array(i)), ".", _itos(magnitude[i] % 10), suffix)

    text = _override(whole, (magnitude % 10 != 0) & ~long_form, decimals(""))
    text = _override(text, long_form, decimals("0000"))
    return _override(text, tenths < 0, lambda i: _join("-", text.take(pa.array(i))))


#: "Modified On" cells: a pool of November 2026 timestamps as D365 shows them
_MODIFIED_ON = [f"11/{1 + i % 28}/2026 {1 + (i * 7) % 12}:{(i * 13) % 60:02d} {'AM' if i % 3 else 'PM'}"
                for i in range(336)]


# ---------------------------------------------------------------------------------------------
# drawing


@dataclass(frozen=True)
class _Customers:
    names: pa.Array
    mapping_names: pa.Array
    currency: np.ndarray           # primary currency index
    second_currency: np.ndarray    # -1, or a currency some of their orders use
    is_mapped: np.ndarray
    tenants: pa.Array
    discount_permille: np.ndarray
    baskets: np.ndarray            # customer × 6 favourite products

    def __len__(self) -> int:
        return len(self.currency)


@dataclass(frozen=True)
class _Orders:
    number: pa.Array
    name: np.ndarray               # index into _ORDER_NAMES
    state: np.ndarray              # statecode
    status_reason: pa.Array
    currency_as_code: np.ndarray   # the order shows "USD" rather than "US Dollar"
    fulfill_no_position: np.ndarray  # the line that says Fulfill Order = No, or -1


@dataclass(frozen=True)
class _Lines:
    order: np.ndarray              # order index
    position: np.ndarray           # 0-based position in the order
    customer: np.ndarray
    currency: np.ndarray           # currency index of the row
    product: np.ndarray            # catalog index, _UNKNOWN or _WRITE_IN
    tenths: np.ndarray             # quantity × 10
    provision_as: np.ndarray       # 0 blank, 1 "New", 2 "Existing"
    case: np.ndarray               # case index of the row's own problem, -1 none


def _customer_names(rng: np.random.Generator, count: int) -> pa.Array:
    per_prefix, combos = len(_MIDDLES) * len(_SUFFIXES), len(_PREFIXES) * len(_MIDDLES) * len(_SUFFIXES)
    pick = rng.permutation(combos)[: min(count, combos)]
    if count > combos:  # more customers than word combinations: the rest are numbered
        pick = np.concatenate([pick, rng.integers(0, combos, size=count - combos)])
    suffix = pick % len(_SUFFIXES)
    comma = np.array([s.startswith(",") for s in _SUFFIXES])[suffix]
    names = _join(_take(_PREFIXES, pick // per_prefix), " ", _take(_MIDDLES, (pick // len(_SUFFIXES)) % len(_MIDDLES)),
                  _if(comma, "", " "), _take(_SUFFIXES, suffix))
    numbered = np.arange(count) >= combos
    return _if(numbered, _join(names, " ", _itos(np.arange(count) + 1)), names)


def _draw_customers(rng: np.random.Generator, count: int) -> _Customers:
    names = _customer_names(rng, count)
    currency = rng.choice(len(_CURRENCIES), size=count, p=_CURRENCY_WEIGHTS)
    second = np.where(rng.random(count) < 0.05, (currency + rng.integers(1, len(_CURRENCIES), count)) % 5, -1)
    is_mapped = np.ones(count, dtype=bool)
    is_mapped[rng.permutation(count)[: int(round(0.10 * count))]] = False
    # how provider_accounts.csv spells a name: as in CRM, in upper case, or with a doubled space
    spelling = rng.choice(3, size=count, p=[0.9, 0.05, 0.05])
    mapping_names = _if(spelling == 1, pc.utf8_upper(names),
                        _if(spelling == 2, pc.replace_substring(names, " ", "  ", max_replacements=1), names))
    # each customer's favourite products: weighted sampling without replacement (Gumbel top-k)
    keys = np.log(CATALOG["weight"].to_numpy(dtype=float)) + rng.gumbel(size=(count, len(CATALOG)))
    return _Customers(names=names, mapping_names=mapping_names, currency=currency, second_currency=second,
                      is_mapped=is_mapped, tenants=_guids(rng, count),
                      discount_permille=rng.choice([0, 50, 100, 150], size=count, p=[0.5, 0.25, 0.15, 0.1]),
                      baskets=np.argsort(-keys, axis=1)[:, :6])


def _order_sizes(rng: np.random.Generator, lines: int) -> np.ndarray:
    """Order sizes (≥ 1, mean ≈ 4) adding up to exactly ``lines``."""
    n_orders = max(1, int(round(lines / 4)))
    sizes = 1 + rng.poisson(3, n_orders)
    diff = lines - int(sizes.sum())
    if diff > 0:
        np.add.at(sizes, rng.integers(0, n_orders, diff), 1)
    elif diff < 0:
        owner = np.repeat(np.arange(n_orders), sizes - 1)  # every line but each order's first
        sizes -= np.bincount(owner[rng.choice(len(owner), size=-diff, replace=False)], minlength=n_orders)
    return sizes


def _draw_quantities(rng: np.random.Generator, product: np.ndarray) -> np.ndarray:
    """Quantities in tenths, by each product's kind."""
    n = len(product)
    kind = CATALOG["quantity_kind"].to_numpy()[np.maximum(product, 0)]
    choices = [10 * np.minimum(rng.geometric(1 / 9, n), 60), np.full(n, 10), 10 * rng.integers(5, 81, n),
               10 * rng.integers(1, 21, n), 5 * rng.integers(1, 81, n), 10 * rng.integers(1, 5, n)]
    tenths = np.choose(kind, choices).astype(np.int64)
    return np.where(product < 0, 10 * rng.integers(1, 11, n), tenths)


def _order_numbers(rng: np.random.Generator, first: int, count: int) -> pa.Array:
    serial = _pad(_itos(np.arange(first, first + count)), 5)
    return _join("ORD-", serial, "-", _random_text(rng, count, 6, "BCDFGHJKLMNPQRSTVWXZ0123456789"))


def _draw_orders(rng: np.random.Generator, sizes: np.ndarray, customer_of_order: np.ndarray,
                 customers: _Customers, states: np.ndarray, *, first_serial: int,
                 with_cases: bool) -> tuple[_Orders, _Lines]:
    """Orders and their lines: products from each customer's basket, bad cases, overrides."""
    n_orders, n = len(sizes), int(sizes.sum())
    order = np.repeat(np.arange(n_orders), sizes)
    position = np.arange(n) - np.concatenate([[0], np.cumsum(sizes)[:-1]])[order]
    second = customers.second_currency[customer_of_order]
    order_currency = np.where((second >= 0) & (rng.random(n_orders) < 0.3), second,
                              customers.currency[customer_of_order])
    active = states <= 1

    case = np.full(n_orders, -1)
    if with_cases:
        drawn = rng.choice(len(_CASES), size=n_orders, p=_CASE_WEIGHTS / _CASE_WEIGHTS.sum())
        # a currency mismatch needs two lines that agree; a duplicate needs a second row
        drawn = np.where((drawn == _C["currency_mismatch"]) & (sizes < 3), _C["amount_mismatch"], drawn)
        drawn = np.where((drawn == _C["duplicate_line"]) & (sizes < 2), _C["write_in"], drawn)
        case = np.where(active & (rng.random(n_orders) < _BAD_ORDER_SHARE), drawn, -1)
        # R1 comes first: some skipped orders carry a defect as well, and are only skipped
        defect = rng.choice([_C["unknown_product"], _C["amount_mismatch"], _C["invalid_price"]], size=n_orders)
        case = np.where(~active & (rng.random(n_orders) < _SKIPPED_DEFECT_SHARE), defect, case)
    # the bad row; a duplicate is the order's last row, copied from its first
    bad_position = np.where(case == _C["duplicate_line"], sizes - 1, (rng.random(n_orders) * sizes).astype(int))
    line_case = np.where(position == bad_position[order], case[order], -1)
    line_case = np.where((case[order] == _C["duplicate_line"]) & (position == 0), _C["duplicate_line"], line_case)

    customer = customer_of_order[order]
    product = customers.baskets[customer, np.minimum(rng.geometric(0.35, n) - 1, customers.baskets.shape[1] - 1)]
    for name, choices in (("quantity_fractional_pc", _RECURRING_PC), ("quantity_above_max", _BOUNDED_MAX_PC),
                          ("quantity_below_min", _MIN_BOUNDED), ("quantity_zero", _UNBOUNDED),
                          ("quantity_negative", _UNBOUNDED)):
        product = np.where(line_case == _C[name], choices[rng.integers(0, len(choices), n)], product)
    product = np.where(line_case == _C["unknown_product"], _UNKNOWN, product)
    product = np.where(line_case == _C["write_in"], _WRITE_IN, product)
    tenths = _draw_quantities(rng, product)
    tenths = np.select(
        [line_case == _C["quantity_fractional_pc"], line_case == _C["quantity_above_max"],
         line_case == _C["quantity_below_min"], line_case == _C["quantity_zero"],
         line_case == _C["quantity_negative"]],
        [10 * rng.integers(1, 21, n) + 5, 10 * rng.integers(301, 500, n), 10 * rng.integers(1, 5, n),
         np.zeros(n, dtype=np.int64), -10 * rng.integers(1, 6, n)],
        tenths,
    )
    currency = order_currency[order]
    odd = (currency + rng.integers(1, len(_CURRENCIES), n)) % len(_CURRENCIES)
    currency = np.where(line_case == _C["currency_mismatch"], odd, currency)
    provision_as = (rng.random(n) < 0.2).astype(np.int64)  # blank (the default, New) or "New"

    reason_pick = (rng.random(n_orders) < 0.5).astype(int)
    reasons = _strings([r for pair in _STATUS_REASONS for r in pair])
    orders = _Orders(
        number=_order_numbers(rng, first_serial, n_orders),
        name=rng.integers(0, len(_ORDER_NAMES), n_orders),
        state=states,
        status_reason=_take(reasons, 2 * states + reason_pick),
        currency_as_code=rng.random(n_orders) < 0.15,
        fulfill_no_position=np.where(active & (rng.random(n_orders) < 0.03),
                                     (rng.random(n_orders) * sizes).astype(int), -1),
    )
    return orders, _Lines(order, position, customer, currency, product, tenths, provision_as, line_case)


def _render(rng: np.random.Generator, lines: _Lines, orders: _Orders, customers: _Customers, *,
            file: str, order_offset: int, line_offset: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The export rows (text) and the truth behind them."""
    n = len(lines.order)
    product, case, tenths, currency = lines.product, lines.case, lines.tenths, lines.currency
    known = product >= 0
    catalog = np.maximum(product, 0)

    # amounts, exact in integers: price and discounts in cents, gross in 1/1000 of a unit
    unknown_pick = rng.integers(0, len(_UNKNOWN_PRODUCTS), n)
    listed = np.where(known, CATALOG["list_cents"].to_numpy()[catalog],
                      np.where(product == _UNKNOWN, np.array([p[3] for p in _UNKNOWN_PRODUCTS])[unknown_pick],
                               100 * rng.integers(50, 2000, n)))
    price = (listed * (1000 - customers.discount_permille[lines.customer]) + 500) // 1000
    volume = np.where(rng.random(n) < 0.08, (price * 5 + 50) // 100, 0)
    # a bad discount or tax cell must hold a non-zero amount (an unreadable "0,00" would change nothing)
    volume = np.where((case == _C["invalid_volume_discount"]) & (volume == 0), np.maximum(price // 20, 1), volume)
    gross = tenths * (price - volume)
    manual = np.where((rng.random(n) < 0.08) & (gross > 0), gross // 1_000_000 * 100, 0)
    tax = np.where((rng.random(n) < 0.6) & (gross > 0),
                   ((gross - 10 * manual) * _TAX_PERMILLE[currency] // 1000 + 5) // 10, 0)
    tax = np.where((case == _C["invalid_tax"]) & (tax == 0), np.abs(gross) // 1250 + 100, tax)
    extended = (gross - 10 * manual + 10 * tax + 5) // 10  # cents, within 0.005 of the R8 formula
    mismatch = np.where(rng.random(n) < 0.5, -100, 100) * rng.integers(1, 200, n)
    extended = np.where(case == _C["amount_mismatch"], extended + mismatch, extended)

    # every other per-row choice, drawn before any text is made
    v = {
        "order": lines.order, "position": lines.position, "customer": lines.customer, "currency": currency,
        "product": product, "case": case, "tenths": tenths, "provision_as": lines.provision_as,
        "unknown_pick": unknown_pick, "price": price, "volume": volume, "manual": manual, "tax": tax,
        "extended": extended,
        "price_as_text": rng.random(n) < 0.15, "manual_blank": rng.random(n) < 0.4,
        "write_in_pick": rng.integers(0, len(_WRITE_INS), n), "quantity_long": rng.random(n) < 0.2,
        "fulfill_yes": rng.random(n) < 0.3,
        "modified_on": rng.integers(0, len(_MODIFIED_ON), n),
        "guid": _guid_codes(rng, n),
        "checksum": _random_codes(rng, n, 24, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
    }
    # DUPLICATE_LINE: the order's last row is an exact copy of its first one (the same GUID)
    copies = np.flatnonzero((case == _C["duplicate_line"]) & (lines.position > 0))
    sources = copies - lines.position[copies]
    v = {key: values.copy() for key, values in v.items()}
    for values in v.values():
        values[copies] = values[sources]
    identity = np.arange(n)
    identity[copies] = sources
    o, product, case, currency, known = v["order"], v["product"], v["case"], v["currency"], v["product"] >= 0
    catalog = np.maximum(product, 0)
    price, volume, manual, tax, extended = v["price"], v["volume"], v["manual"], v["tax"], v["extended"]

    symbols = _take(_CURRENCY_SYMBOLS, currency)
    price_text = _override(_money(price), v["price_as_text"] & (case != _C["invalid_price"]),
                           lambda i: _money(price[i], "symbol", symbols.take(pa.array(i))))
    price_text = _override(price_text, case == _C["invalid_price"], lambda i: _money(price[i], "de"))
    volume_text = _override(_money(volume), case == _C["invalid_volume_discount"], lambda i: _money(volume[i], "de"))
    manual_text = _if((manual == 0) & v["manual_blank"], "", _money(manual))
    tax_text = _override(_money(tax), case == _C["invalid_tax"], lambda i: _money(tax[i], "de"))
    extended_text = _override(_money(extended), case == _C["invalid_extended"], lambda i: _money(extended[i], "de"))

    # product cells: catalog products, then the unknown ones, then "" (write-in)
    label = np.where(known, catalog, np.where(product == _UNKNOWN, len(CATALOG) + v["unknown_pick"],
                                              len(CATALOG) + len(_UNKNOWN_PRODUCTS)))
    number_text = _take(_NUMBERS + [p[0] for p in _UNKNOWN_PRODUCTS] + [""], label)
    name_text = _take(CATALOG["product_name"].tolist() + [p[1] for p in _UNKNOWN_PRODUCTS] + [""], label)
    unit_text = _take(CATALOG["unit"].tolist() + [p[2] for p in _UNKNOWN_PRODUCTS] + ["Each"], label)
    write_in = _take(_WRITE_INS + [""], np.where(product == _WRITE_IN, v["write_in_pick"], len(_WRITE_INS)))

    state = orders.state[o]
    fulfill_no = orders.fulfill_no_position[o] == v["position"]
    guid = _ascii(v["guid"])
    order_number = orders.number.take(pa.array(o))
    columns = [
        guid, _ascii(v["checksum"]), _take(_MODIFIED_ON, v["modified_on"]), order_number,
        _take(_ORDER_NAMES, orders.name[o]),
        customers.names.take(pa.array(v["customer"])),
        _take(_CURRENCY_NAMES + _CURRENCIES, currency + len(_CURRENCIES) * orders.currency_as_code[o]),
        _take(_STATE_LABELS, state),
        orders.status_reason.take(pa.array(o)),
        _itos(v["position"] + 1),
        number_text, name_text, write_in,
        _quantity(v["tenths"], v["quantity_long"]),
        unit_text, price_text, volume_text, manual_text, tax_text, extended_text,
        _take(["", "New", "Existing"], v["provision_as"]),
        _take(["", "Yes", "No"], np.where(fulfill_no, 2, v["fulfill_yes"].astype(int))),
    ]
    rows = pa.table(dict(zip(FLAT_HEADERS, columns, strict=True))).to_pandas()
    truth = pd.DataFrame({
        "file": pd.Categorical.from_codes(np.full(n, [ORDERS, MORE_ORDERS].index(file)), [ORDERS, MORE_ORDERS]),
        "order": order_offset + o,
        "order_number": order_number.to_pandas(),
        "line": line_offset + identity,
        "guid": guid.to_pandas(),
        "customer": v["customer"],
        "currency": pd.Categorical.from_codes(currency, _CURRENCIES),
        "state": state,
        "product": pd.Categorical.from_codes(np.where(known, product, -1), _NUMBERS),
        "known": known,
        "automatic": known & _AUTOMATIC[catalog],
        "recurring": known & _RECURRING[catalog],
        "existing": v["provision_as"] == 2,
        "fulfill": ~fulfill_no,
        "case": pd.Categorical.from_codes(case, CASE_NAMES),
        "problem": pd.Categorical.from_codes(np.where(case >= 0, _CASE_REASON[np.maximum(case, 0)], -1), _REASONS),
    })
    return rows, truth


def generate_orders(lines: int, seed: int) -> SyntheticExport:
    """A realistic flat D365 export of exactly ``lines`` rows, its reference data, and a follow-up
    export (≈ lines / 10 rows) of new orders for the same customers. Pure and deterministic."""
    if lines < 1:
        raise ValueError("lines must be at least 1")
    rng = np.random.default_rng(seed)
    sizes = _order_sizes(rng, lines)
    n_orders = len(sizes)
    customers = _draw_customers(rng, max(1, int(round(n_orders / 50))))
    # every customer has an order; the others go by a skewed weight (some customers buy a lot more)
    weights = rng.lognormal(0, 0.5, len(customers))
    customer_of_order = rng.choice(len(customers), size=n_orders, p=weights / weights.sum())
    first_orders = rng.permutation(n_orders)[: min(len(customers), n_orders)]
    customer_of_order[first_orders] = np.arange(len(first_orders))
    states = rng.choice(len(_STATE_LABELS), size=n_orders, p=_STATE_WEIGHTS)
    orders, drawn = _draw_orders(rng, sizes, customer_of_order, customers, states, first_serial=1000,
                                 with_cases=True)
    rows, truth = _render(rng, drawn, orders, customers, file=ORDERS, order_offset=0, line_offset=0)
    more_rows, more_truth = _follow_up(rng, lines, customers, truth, first_serial=1000 + n_orders)

    products = CATALOG[PRODUCT_COLUMNS].copy()
    products["recurring"] = products["recurring"].map({True: "true", False: "false"})
    for column in ("min_quantity", "max_quantity"):
        products[column] = products[column].map(lambda v: "" if pd.isna(v) else str(int(v)))
    public = pd.DataFrame({
        "customer_name": customers.names.to_pandas(), "mapping_name": customers.mapping_names.to_pandas(),
        "currency": pd.Categorical.from_codes(customers.currency, _CURRENCIES), "is_mapped": customers.is_mapped,
        "tenant": customers.tenants.to_pandas(),
    })
    return SyntheticExport(seed=seed, lines=lines, orders=rows, more_orders=more_rows,
                           truth=pd.concat([truth, more_truth], ignore_index=True), customers=public,
                           products=products.fillna("").astype(str))


def _follow_up(rng: np.random.Generator, lines: int, customers: _Customers, truth: pd.DataFrame,
               *, first_serial: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """New orders for the same customers (≈ lines / 10 rows): orders of ``New`` lines, and orders
    of ``Existing`` lines that add to subscriptions of the first export — most bought in the first
    run, some only in the run that releases the orders held for a mapping (so they are not found
    in that run, and found in the next)."""
    n_lines = max(8, lines // 10)
    first = _simulate(truth, customers.is_mapped, RunSpec(), _State.empty())[1]
    released = _simulate(truth, customers.is_mapped, RunSpec(all_mapped=True), first)[1]
    bought, later = first.subscriptions, np.setdiff1d(released.subscriptions, first.subscriptions)
    n_existing = max(2, int(round(0.3 * n_lines)))
    n_later = min(len(later), max(1, int(round(0.15 * n_existing))))
    n_bought = min(len(bought), n_existing - n_later)
    targets = np.sort(np.concatenate([rng.choice(bought, n_bought, replace=False),
                                      rng.choice(later, n_later, replace=False)]).astype(np.int64))
    t_customer, t_currency, t_product = _decode_subscription(targets)
    # Existing lines of one (customer, currency) in orders of up to three lines
    group = t_customer * len(_CURRENCIES) + t_currency
    rank = np.arange(len(targets)) - np.searchsorted(group, group)
    _, e_order = np.unique(group * len(targets) + rank // 3, return_inverse=True)
    e_order = e_order.ravel()
    n_e_orders = int(e_order.max()) + 1 if len(targets) else 0
    e_position = rank % 3

    new_sizes = _order_sizes(rng, max(1, n_lines - len(targets)))
    new_customers = rng.integers(0, len(customers), len(new_sizes))
    states = rng.choice(2, size=len(new_sizes) + n_e_orders, p=[0.8, 0.2])
    new_orders, new = _draw_orders(rng, new_sizes, new_customers, customers, states[: len(new_sizes)],
                                   first_serial=first_serial, with_cases=False)
    m, k = len(targets), len(new_sizes)
    both = _Lines(
        order=np.concatenate([new.order, k + e_order]), position=np.concatenate([new.position, e_position]),
        customer=np.concatenate([new.customer, t_customer]), currency=np.concatenate([new.currency, t_currency]),
        product=np.concatenate([new.product, t_product]),
        tenths=np.concatenate([new.tenths, 10 * rng.integers(1, 4, m)]),
        provision_as=np.concatenate([new.provision_as, np.full(m, 2)]),
        case=np.concatenate([new.case, np.full(m, -1)]),
    )
    orders = _Orders(
        number=_order_numbers(rng, first_serial, k + n_e_orders),
        name=np.concatenate([new_orders.name, np.full(n_e_orders, _ORDER_NAMES.index("Add-on licences"))]),
        state=states,
        status_reason=pa.concat_arrays([new_orders.status_reason, _take(["In Progress"], np.zeros(n_e_orders))]),
        currency_as_code=np.concatenate([new_orders.currency_as_code, np.zeros(n_e_orders, dtype=bool)]),
        fulfill_no_position=np.concatenate([new_orders.fulfill_no_position, np.full(n_e_orders, -1)]),
    )
    return _render(rng, both, orders, customers, file=MORE_ORDERS, order_offset=int(truth["order"].max()) + 1,
                   line_offset=int(truth["line"].max()) + 1)


# ---------------------------------------------------------------------------------------------
# the oracle: SPEC §3 and §5 applied to the generation choices


def _subscription_key(customer: np.ndarray, currency: np.ndarray, product: np.ndarray) -> np.ndarray:
    """(customer, currency, product): the product fixes the contract key's other parts, the
    provider and the provisioning unit, so this is R5's match key."""
    return (np.asarray(customer, dtype=np.int64) * 8 + currency) * 64 + np.maximum(product, 0)


def _decode_subscription(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return keys // 512, (keys // 64) % 8, keys % 64


@dataclass(frozen=True)
class _State:
    """What the database holds after a run, as far as the oracle needs (int keys)."""

    provisioned: np.ndarray      # line identities (not necessarily sorted or unique)
    contracts: np.ndarray        # (customer, contract type, product type, billing frequency, currency)
    subscriptions: np.ndarray    # _subscription_key

    @staticmethod
    def empty() -> _State:
        nothing = np.array([], dtype=np.int64)
        return _State(nothing, nothing, nothing)


def _simulate(truth: pd.DataFrame, is_mapped: np.ndarray, spec: RunSpec, state: _State) -> tuple[dict, _State]:
    rows = truth[truth["file"].isin(spec.files).to_numpy()]
    customer = rows["customer"].to_numpy()
    currency = rows["currency"].cat.codes.to_numpy().astype(np.int64)
    product = rows["product"].cat.codes.to_numpy().astype(np.int64)
    recurring, existing = rows["recurring"].to_numpy(), rows["existing"].to_numpy() & rows["recurring"].to_numpy()
    mapped = np.ones(len(is_mapped), dtype=bool) if spec.all_mapped else np.asarray(is_mapped, dtype=bool)
    sub_key = _subscription_key(customer, currency, product)
    safe = np.maximum(product, 0)
    contract_key = (((customer.astype(np.int64) * 8 + currency) * 2 + recurring) * 4 + _PTYPE[safe]) * 8 + _FREQ[safe]

    skipped = rows["state"].to_numpy() >= 2                                   # R1 before everything
    already = ~skipped & np.isin(rows["line"].to_numpy(), state.provisioned)  # R6 before R2
    problem = rows["problem"].astype("string").fillna("").to_numpy(dtype=object)
    not_found = existing & (problem == "") & ~np.isin(sub_key, state.subscriptions)  # R5: pre-run only
    problem = np.where(not_found, "EXISTING_SUBSCRIPTION_NOT_FOUND", problem)
    rejected = ~skipped & ~already & (problem != "")
    open_ = ~skipped & ~already & ~rejected
    needs_mapping = open_ & rows["automatic"].to_numpy() & ~mapped[customer]  # R3
    order = rows["order"].to_numpy()
    order = order - (order.min() if len(order) else 0)  # order ids are dense within and across the files
    has_rows = np.bincount(order) > 0

    def any_in_order(mask: np.ndarray) -> np.ndarray:
        return (np.bincount(order, weights=mask, minlength=len(has_rows)) > 0)[has_rows]

    def spread(mask: np.ndarray) -> np.ndarray:  # the order has such a line → each of its lines
        return (np.bincount(order, weights=mask, minlength=len(has_rows)) > 0)[order]

    by_rejection = open_ & spread(rejected)                                   # R2
    by_mapping = open_ & ~by_rejection & spread(needs_mapping)
    provisioned = open_ & ~by_rejection & ~by_mapping
    held = by_rejection | by_mapping

    o_skipped, o_blocked = any_in_order(skipped), any_in_order(held | rejected)  # R7
    o_new, o_fulfil = any_in_order(provisioned), ~any_in_order(~rows["fulfill"].to_numpy())
    complete = ~o_skipped & ~o_blocked
    reasons = pd.Series(np.concatenate([
        problem[rejected],
        rows.loc[skipped, "state"].map(_SKIP_CODES).to_numpy(dtype=object),
        np.full(int(by_rejection.sum()), "ORDER_HAS_REJECTED_LINES", dtype=object),
        np.full(int(by_mapping.sum()), "NEEDS_PROVIDER_MAPPING", dtype=object),
    ])).value_counts()
    used = np.unique(contract_key[provisioned])                               # R4
    creates = provisioned & recurring & ~existing                             # R5
    summary = {
        "lines": {"input": len(rows), "provisioned": int(provisioned.sum()), "already_provisioned": int(already.sum()),
                  "skipped": int(skipped.sum()), "held": int(held.sum()), "rejected": int(rejected.sum()),
                  "failed": 0},
        "orders": {"input": len(o_new), "fulfilled": int((complete & o_new & o_fulfil).sum()),
                   "already_fulfilled": int((complete & ~o_new & o_fulfil).sum()),
                   "provisioned_not_fulfilled": int((complete & ~o_fulfil).sum()),
                   "held": int((~o_skipped & o_blocked).sum()), "skipped": int(o_skipped.sum()), "failed": 0},
        "customers_needing_provider_mapping": len(np.unique(customer[needs_mapping])),
        "billing_contracts": {"created": int((~np.isin(used, state.contracts)).sum()),
                              "reused": int(np.isin(used, state.contracts).sum())},
        "subscriptions": {"created": int(creates.sum()), "updated": len(np.unique(sub_key[provisioned & existing]))},
        "one_time_charges": {"created": int((provisioned & ~recurring).sum())},
        "exceptions_by_reason": {str(code): int(n) for code, n in sorted(reasons.items())},
    }
    after = _State(provisioned=np.concatenate([state.provisioned, rows["line"].to_numpy()[provisioned]]),
                   contracts=np.union1d(state.contracts, used),
                   subscriptions=np.union1d(state.subscriptions, np.unique(sub_key[creates])))
    return summary, after


# ---------------------------------------------------------------------------------------------
# files


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """UTF-8 with a BOM, as D365 writes CSV; every text cell quoted."""
    with path.open("wb") as handle:
        handle.write(codecs.BOM_UTF8)
        pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), handle,
                         pa_csv.WriteOptions(quoting_style="needed"))


def write_export(export: SyntheticExport, out_dir: Path) -> None:
    """Write ``orders.csv``, ``more_orders.csv`` (the follow-up), ``reference/`` (products.csv and
    provider_accounts.csv without the unmapped customers) and ``reference_all_mapped/`` (the same
    with every customer mapped)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(export.orders, out_dir / ORDERS_FILE)
    _write_csv(export.more_orders, out_dir / MORE_ORDERS_FILE)
    shuffled = export.customers.iloc[np.random.default_rng(export.seed).permutation(len(export.customers))]
    accounts = pd.DataFrame({"customer_name": shuffled["mapping_name"].to_numpy(), "customer_id": "",
                             "provider": "partner_center", "provider_customer_id": shuffled["tenant"].to_numpy()})
    for folder, selected in ((REFERENCE_DIR, shuffled["is_mapped"].to_numpy(dtype=bool)),
                             (ALL_MAPPED_REFERENCE_DIR, np.ones(len(accounts), dtype=bool))):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
        export.products.to_csv(out_dir / folder / "products.csv", index=False)
        accounts[selected].to_csv(out_dir / folder / "provider_accounts.csv", index=False)


def write_expected(export: SyntheticExport, path: Path) -> None:
    """The oracle's standard scenario (``expected_scenario``) as JSON."""
    Path(path).write_text(json.dumps(export.expected_scenario(), indent=2) + "\n", encoding="utf-8")


__all__ = ["ALL_MAPPED_REFERENCE_DIR", "FLAT_HEADERS", "MORE_ORDERS", "MORE_ORDERS_FILE", "ORDERS", "ORDERS_FILE",
           "REFERENCE_DIR", "RunSpec", "SUMMARY_KEYS", "SyntheticExport", "comparable", "generate_orders",
           "write_expected", "write_export"]
