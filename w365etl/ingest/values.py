"""Cell values of order files (SPEC §2.1): vectorised parsers, one whole column at a time.

Every parser takes a column of cell texts (``str`` with NA) and returns ``Parsed(values, bad)``:
the parsed column (NA where the cell is blank or did not parse) and a boolean mask of the
cells that were not blank and did not parse. Nothing is guessed: a money text that does not
fit the configured number locale (``1.299,00`` under en-US) is bad, not reinterpreted.

Amounts stay exact: the text is rewritten to canonical decimal text ("-1299.5") and cast to
an Arrow decimal by :func:`w365etl.amounts.decimals_from_text`; no value ever passes through
a binary float.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from w365etl.amounts import MONEY_DTYPE, MONEY_SCALE, MONEY_TYPE, QUANTITY_DTYPE, QUANTITY_SCALE, QUANTITY_TYPE, decimals_from_text
from w365etl.ingest.currencies import ISO_4217_CODES

NUMBER_LOCALES = ("en-US", "de-DE", "fr-FR")
DATE_ORDERS = ("MDY", "DMY", "YMD")


class Parsed(NamedTuple):
    values: pd.Series
    #: True where the cell is not blank and did not parse.
    bad: pd.Series


# ---------------------------------------------------------------------------------------------
# common helpers


def _as_text(values: pd.Series) -> pd.Series:
    """The column as pandas ``str``, no-break spaces made ordinary, stripped."""
    text = values if values.dtype == "str" else values.astype("str")
    if text.str.contains("[\u00a0\u202f\u2007]", regex=True).any():
        text = text.str.replace("[\u00a0\u202f\u2007]", " ", regex=True)
    return text.str.strip()


def _blank(text: pd.Series) -> pd.Series:
    return (text.isna() | (text == "")).to_numpy(dtype=bool)


def _mask(index: pd.Index, array: np.ndarray) -> pd.Series:
    return pd.Series(array, index=index, dtype=bool)


def _na_text(index: pd.Index) -> pd.Series:
    return pd.Series(np.nan, index=index, dtype="str")


def per_distinct_value(parser: Callable[..., Parsed]) -> Callable[..., Parsed]:
    """Run ``parser`` once per distinct cell text and spread the result back over the column.

    Order files repeat themselves (a few currencies, states, prices, quantities): parsing
    the distinct texts and taking the results by position is much cheaper than parsing 1M
    cells, and gives exactly the same column.
    """

    @functools.wraps(parser)
    def wrapper(values: pd.Series, *args: object, **kwargs: object) -> Parsed:
        if len(values) < 256:
            return parser(values, *args, **kwargs)
        text = values if values.dtype == "str" else values.astype("str")
        codes, uniques = pd.factorize(text, use_na_sentinel=True)
        distinct = pd.concat(
            [pd.Series(uniques, dtype="str"), pd.Series([np.nan], dtype="str")], ignore_index=True
        )
        parsed, bad = parser(distinct, *args, **kwargs)
        positions = np.where(codes < 0, len(distinct) - 1, codes)
        out = parsed.take(positions)
        out.index = values.index
        return Parsed(out, pd.Series(bad.to_numpy(dtype=bool)[positions], index=values.index, dtype=bool))

    return wrapper


def _label_key(text: pd.Series) -> pd.Series:
    """Case-folded, whitespace-collapsed text used to look a label up."""
    return text.str.lower().str.replace(r"\s+", " ", regex=True)


#: C0 controls other than tab and line ends, DEL and C1 controls: no export writes them, and
#: they break reports (an xlsx cell cannot hold them) and terminals (ESC sequences)
CONTROL_CHARACTERS = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"


def parse_text(values: pd.Series) -> Parsed:
    """Free text: stripped at both ends (inner whitespace kept); blank → NA.

    Bad only when it holds a control character (:data:`CONTROL_CHARACTERS`).
    """
    text = values if values.dtype == "str" else values.astype("str")
    text = text.str.strip()
    blank = _blank(text)
    bad = np.zeros(len(text), dtype=bool)
    if _may_hold_control_characters(text):
        bad = text.str.contains(CONTROL_CHARACTERS, regex=True).fillna(False).to_numpy(dtype=bool) & ~blank
    out = text.where(~blank & ~bad)
    return Parsed(out.astype("str"), _mask(values.index, bad))


def _may_hold_control_characters(text: pd.Series) -> bool:
    """False when no cell can hold a control character: one pass over the column's bytes.

    A regex over 1M cells costs ~0.3 s per column; the UTF-8 bytes of an Arrow string column
    are one buffer, scanned with numpy in a few ms (a hit there is confirmed cell by cell).
    """
    arrow = getattr(text.array, "_pa_array", None)
    if arrow is None:
        return True
    for chunk in getattr(arrow, "chunks", [arrow]):
        data = chunk.buffers()[-1]
        if data is None:
            continue
        octets = np.frombuffer(data, dtype=np.uint8)
        if not len(octets) or (octets.min() >= 0x20 and octets.max() < 0x7F):
            continue  # printable ASCII only: the usual case, two reductions and no temporaries
        c0 = (octets < 0x20) & (octets != 0x09) & (octets != 0x0A) & (octets != 0x0D)
        if c0.any() or (octets == 0x7F).any():
            return True
        # C1 controls U+0080–U+009F are 0xC2 0x80–0x9F in UTF-8
        lead = np.flatnonzero(octets[:-1] == 0xC2)
        if len(lead) and ((octets[lead + 1] >= 0x80) & (octets[lead + 1] <= 0x9F)).any():
            return True
    return False


def parse_code(values: pd.Series) -> Parsed:
    """A code such as a provider code: stripped and lower-cased; blank → NA. Never bad."""
    text, bad = parse_text(values)
    return Parsed(text.str.lower(), bad)


# ---------------------------------------------------------------------------------------------
# numbers


@dataclass(frozen=True)
class NumberFormat:
    """How a number locale writes numbers: digit grouping and the decimal mark."""

    locale: str
    #: regex of the integer part: ungrouped, or grouped by threes with one separator kind.
    integer: str
    #: characters that group thousands (removed after validation).
    group_chars: str
    decimal: str
    example: str


NUMBER_FORMATS: dict[str, NumberFormat] = {
    "en-US": NumberFormat("en-US", r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)", ",", ".", "1,299.00"),
    "de-DE": NumberFormat(
        "de-DE", r"(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]{1,3}(?: [0-9]{3})+|[0-9]+)", ". ", ",", "1.299,00"
    ),
    "fr-FR": NumberFormat(
        "fr-FR", r"(?:[0-9]{1,3}(?: [0-9]{3})+|[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+)", ". ", ",", "1 299,00"
    ),
}

_CURRENCY = r"(?:[$€£¥]|[A-Za-z]{3})"


def number_format(locale: str) -> NumberFormat:
    try:
        return NUMBER_FORMATS[locale]
    except KeyError:
        raise ValueError(f"unknown number locale {locale!r}; expected one of {', '.join(NUMBER_LOCALES)}") from None


def _number_regex(fmt: NumberFormat, allow_currency: bool) -> str:
    dec = re.escape(fmt.decimal)
    num = rf"(?:{fmt.integer}(?:{dec}[0-9]*)?|{dec}[0-9]+)"
    if not allow_currency:
        return rf"[-+]?\s*{num}"
    body = rf"(?:{_CURRENCY}\s*{num}|{num}\s*{_CURRENCY}|{num})"
    # sign first, or after the currency; or accounting parentheses for a negative amount.
    return rf"(?:[-+]?\s*{body}|{_CURRENCY}\s*[-+]\s*{num}|\(\s*{body}\s*\))"


#: Problems a decimal cell can have (the message names them).
PROBLEM_FORMAT = "format"
PROBLEM_PLACES = "places"
PROBLEM_SIZE = "size"


def decimal_text(
    values: pd.Series, *, locale: str, scale: int, integer_digits: int, allow_currency: bool
) -> tuple[pd.Series, pd.Series]:
    """Canonical decimal text of each cell ("-1299.5"), and the problem of each bad cell.

    Returns ``(canonical, problem)``: ``canonical`` is NA for blank and bad cells; ``problem``
    is NA for good and blank cells, else one of ``format``, ``places`` (more than ``scale``
    decimal places) or ``size`` (more than ``integer_digits`` digits before the point).
    """
    fmt = number_format(locale)
    index = values.index
    text = _as_text(values)
    blank = _blank(text)
    dec = re.escape(fmt.decimal)
    # Fast path: a plain number ("1299.5", "-3") needs no cleaning beyond the decimal mark.
    plain = text.str.fullmatch(rf"-?[0-9]+(?:{dec}[0-9]+)?").fillna(False).to_numpy(dtype=bool)
    rest = ~plain & ~blank
    negative = np.zeros(len(text), dtype=bool)
    digits = text.where(plain)
    fits = plain.copy()
    if rest.any():
        other = text[rest]
        ok = other.str.fullmatch(_number_regex(fmt, allow_currency)).fillna(False).to_numpy(dtype=bool)
        other = other[ok]
        fits[np.flatnonzero(rest)[ok]] = True
        if len(other):
            neg = other.str.contains(r"[-(]", regex=True).to_numpy(dtype=bool)
            cleaned = other.str.replace(rf"{_CURRENCY}|[\s()+\-]", "", regex=True) if allow_currency else other.str.replace(r"[\s+\-]", "", regex=True)
            for char in fmt.group_chars.strip():
                cleaned = cleaned.str.replace(char, "", regex=False)
            digits = digits.mask(pd.Series(fits & ~plain, index=index), cleaned.reindex(index))
            negative[np.flatnonzero(fits & ~plain)] = neg
    plain_negative = text.str.startswith("-").fillna(False).to_numpy(dtype=bool) & plain
    negative |= plain_negative
    digits = digits.str.lstrip("-")
    if fmt.decimal != ".":
        digits = digits.str.replace(fmt.decimal, ".", regex=False)
    integer = digits.str.replace(r"\.[0-9]*$", "", regex=True).str.lstrip("0")
    fraction = digits.str.replace(r"^[0-9]*\.?", "", regex=True).str.rstrip("0")
    integer = integer.mask(integer == "", "0")
    too_many_places = (fraction.str.len() > scale).fillna(False).to_numpy(dtype=bool)
    too_big = (integer.str.len() > integer_digits).fillna(False).to_numpy(dtype=bool)
    good = fits & ~too_many_places & ~too_big
    is_zero = (integer == "0").to_numpy(dtype=bool) & (fraction == "").to_numpy(dtype=bool)
    sign = pd.Series(np.where(negative & ~is_zero, "-", ""), index=index, dtype="str")
    point = pd.Series(np.where((fraction != "").to_numpy(dtype=bool), ".", ""), index=index, dtype="str")
    canonical = (sign + integer + point + fraction).where(pd.Series(good, index=index))
    problem = np.full(len(text), None, dtype=object)
    problem[~blank & ~fits] = PROBLEM_FORMAT
    problem[fits & too_big] = PROBLEM_SIZE
    problem[fits & ~too_big & too_many_places] = PROBLEM_PLACES
    return canonical.astype("str"), pd.Series(problem, index=index, dtype="str")


def _parse_decimal(values: pd.Series, locale: str, arrow_type: pa.Decimal128Type, allow_currency: bool) -> Parsed:
    canonical, problem = decimal_text(
        values,
        locale=locale,
        scale=arrow_type.scale,
        integer_digits=arrow_type.precision - arrow_type.scale,
        allow_currency=allow_currency,
    )
    return Parsed(decimals_from_text(canonical, arrow_type), problem.notna())


@per_distinct_value
def parse_money(values: pd.Series, locale: str = "en-US") -> Parsed:
    """Money: a number, or text like ``$1,299.00`` / ``1.299,00 €`` / ``(5.00)``; up to 6 places."""
    return _parse_decimal(values, locale, MONEY_TYPE, allow_currency=True)


@per_distinct_value
def parse_quantity(values: pd.Series, locale: str = "en-US") -> Parsed:
    """A quantity: a decimal number in the locale's format, up to 5 places (more → bad)."""
    return _parse_decimal(values, locale, QUANTITY_TYPE, allow_currency=False)


@per_distinct_value
def parse_integer(values: pd.Series) -> Parsed:
    """A whole number (e.g. a line item number) → Int64."""
    text = _as_text(values)
    blank = _blank(text)
    ok = text.str.fullmatch(r"[-+]?[0-9]{1,18}").fillna(False).to_numpy(dtype=bool)
    out = text.str.lstrip("+").where(pd.Series(ok, index=text.index)).astype("Int64")
    return Parsed(out, _mask(text.index, ~blank & ~ok))


_BOOLEANS = {"yes": True, "no": False, "true": True, "false": False, "1": True, "0": False}


@per_distinct_value
def parse_boolean(values: pd.Series) -> Parsed:
    """Yes/No/True/False/1/0 (any case) → boolean."""
    text = _as_text(values)
    blank = _blank(text)
    out = text.str.lower().map(_BOOLEANS)
    ok = out.notna().to_numpy(dtype=bool)
    return Parsed(out.astype("boolean"), _mask(text.index, ~blank & ~ok))


_GUID = r"\{?([0-9a-fA-F]{8})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{12})\}?"


def parse_guid(values: pd.Series) -> Parsed:
    """A GUID, with or without braces or hyphens → lower-case hyphenated text."""
    text = _as_text(values)
    blank = _blank(text)
    ok = text.str.fullmatch(_GUID).fillna(False).to_numpy(dtype=bool)
    good = text.where(pd.Series(ok, index=text.index))
    out = good.str.replace(f"^{_GUID}$", r"\1-\2-\3-\4-\5", regex=True).str.lower()
    return Parsed(out.astype("str"), _mask(text.index, ~blank & ~ok))


# ---------------------------------------------------------------------------------------------
# dates


_ISO_DATE = r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
_TIME_TAIL = r"(?:\s+[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?(?:\s*[AaPp][Mm])?)?"
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")


@per_distinct_value
def parse_date(values: pd.Series, date_order: str = "MDY") -> Parsed:
    """A date: an Excel serial number, ISO ``YYYY-MM-DD`` (time ignored) or text in ``date_order``.

    Text dates use ``/``, ``.`` or ``-`` between parts and a four-digit year
    (``11/29/2026`` for MDY, ``29.11.2026`` for DMY, ``2026/11/29`` for YMD); a time after
    the date is ignored. Returns ``datetime64[s]`` at midnight.
    """
    if date_order not in DATE_ORDERS:
        raise ValueError(f"unknown date order {date_order!r}; expected one of {', '.join(DATE_ORDERS)}")
    text = _as_text(values)
    index = text.index
    blank = _blank(text)
    year = pd.Series(np.nan, index=index, dtype="str")
    month = year.copy()
    day = year.copy()

    iso = text.str.fullmatch(_ISO_DATE).fillna(False)
    if iso.any():
        parts = text[iso].str.extract(f"^{_ISO_DATE}$")
        year[iso], month[iso], day[iso] = parts[0], parts[1], parts[2]

    if date_order == "YMD":
        pattern = rf"([0-9]{{4}})[/.\-]([0-9]{{1,2}})[/.\-]([0-9]{{1,2}}){_TIME_TAIL}"
        names = ("y", "m", "d")
    else:
        pattern = rf"([0-9]{{1,2}})[/.\-]([0-9]{{1,2}})[/.\-]([0-9]{{4}}){_TIME_TAIL}"
        names = ("m", "d", "y") if date_order == "MDY" else ("d", "m", "y")
    ordered = text.str.fullmatch(pattern).fillna(False) & ~iso
    if ordered.any():
        parts = text[ordered].str.extract(f"^{pattern}$")
        found = dict(zip(names, (parts[0], parts[1], parts[2]), strict=True))
        year[ordered], month[ordered], day[ordered] = found["y"], found["m"], found["d"]

    frame = pd.DataFrame(
        {
            "year": pd.to_numeric(year, errors="coerce"),
            "month": pd.to_numeric(month, errors="coerce"),
            "day": pd.to_numeric(day, errors="coerce"),
        }
    )
    out = pd.to_datetime(frame, errors="coerce").astype("datetime64[s]")

    serial = text.str.fullmatch(r"[0-9]{1,7}(?:\.[0-9]+)?").fillna(False) & ~iso & ~ordered
    if serial.any():
        days = pd.to_numeric(text[serial], errors="coerce")
        days = days.where((days >= 1) & (days < 2958466))
        stamps = (_EXCEL_EPOCH + pd.to_timedelta(np.floor(days), unit="D")).astype("datetime64[s]")
        out[serial] = stamps
    return Parsed(out, _mask(index, ~blank & out.isna().to_numpy(dtype=bool)))


# ---------------------------------------------------------------------------------------------
# option sets and labels


@dataclass(frozen=True)
class OptionSet:
    """Labels (and, for D365 option sets, numeric codes) with their canonical value."""

    name: str
    #: canonical label → value (the value is the label itself for text option sets).
    labels: Mapping[str, object]
    #: other accepted spellings → canonical label.
    synonyms: Mapping[str, str]
    #: code text → canonical label (D365 option-set values).
    codes: Mapping[str, str]

    def lookup(self) -> dict[str, object]:
        table: dict[str, object] = {}
        for label, value in self.labels.items():
            table[_key(label)] = value
        for synonym, label in self.synonyms.items():
            table[_key(synonym)] = self.labels[label]
        for code, label in self.codes.items():
            table[code] = self.labels[label]
        return table

    def describe(self) -> str:
        labels = ", ".join(self.labels)
        if self.codes:
            return f"one of {labels} (or the codes {', '.join(self.codes)})"
        return f"one of {labels}"


def _key(label: str) -> str:
    return " ".join(label.lower().split())


ORDER_STATE = OptionSet(
    "order_state",
    {"Active": 0, "Submitted": 1, "Canceled": 2, "Fulfilled": 3, "Invoiced": 4},
    {"Cancelled": "Canceled"},
    {"0": "Active", "1": "Submitted", "2": "Canceled", "3": "Fulfilled", "4": "Invoiced"},
)
ORDER_STATUS_REASON = OptionSet(
    "order_status_reason",
    {
        "New": 1,
        "Pending": 2,
        "In Progress": 3,
        "No Money": 4,
        "Complete": 100001,
        "Partial": 100002,
        "Invoiced": 100003,
    },
    {},
    {
        "1": "New",
        "2": "Pending",
        "3": "In Progress",
        "4": "No Money",
        "100001": "Complete",
        "100002": "Partial",
        "100003": "Invoiced",
    },
)
PAYMENT_TERMS = OptionSet(
    "payment_terms",
    {label: label for label in ("Due on Receipt", "Net 30", "2% 10, Net 30", "Net 45", "Net 60")},
    {},
    {"1": "Net 30", "2": "2% 10, Net 30", "3": "Net 45", "4": "Net 60"},
)


def _text_options(name: str, labels: tuple[str, ...], synonyms: Mapping[str, str] | None = None) -> OptionSet:
    return OptionSet(name, {label: label for label in labels}, synonyms or {}, {})


CONTRACT_TYPE = _text_options("contract_type", ("Recurring", "Non-Recurring"), {"Non Recurring": "Non-Recurring"})
BILLING_FREQUENCY = _text_options(
    "billing_frequency", ("Monthly", "Quarterly", "Annually", "Triennial"), {"Annual": "Annually"}
)
CONTRACT_PRODUCT_TYPE = _text_options("contract_product_type", ("CSP", "Support Contract", "Managed Services"))
PROCESS_REFUNDS = _text_options("process_refunds", ("Use Global Setting", "Yes", "No"))
PROVISION_AS = _text_options("provision_as", ("New", "Existing"))
PROVISIONING_UNIT = _text_options("provisioning_unit", ("Monthly", "Annual"), {"Annually": "Annual"})


@per_distinct_value
def parse_option(values: pd.Series, options: OptionSet) -> Parsed:
    """A label (any case, whitespace collapsed) or code → canonical value.

    Option sets whose values are numbers (order state, status reason) give Int64; the others
    give the canonical label as ``str``.
    """
    text = _as_text(values)
    blank = _blank(text)
    out = _label_key(text).map(options.lookup())
    ok = out.notna().to_numpy(dtype=bool)
    numeric = all(isinstance(value, int) for value in options.labels.values())
    out = out.astype("Int64") if numeric else out.astype("str")
    return Parsed(out, _mask(text.index, ~blank & ~ok))


def parse_order_state(values: pd.Series) -> Parsed:
    return parse_option(values, ORDER_STATE)


def parse_status_reason(values: pd.Series) -> Parsed:
    return parse_option(values, ORDER_STATUS_REASON)


def parse_payment_terms(values: pd.Series) -> Parsed:
    return parse_option(values, PAYMENT_TERMS)


CURRENCY_NAMES = {
    "US Dollar": "USD",
    "Euro": "EUR",
    "Pound Sterling": "GBP",
    "Canadian Dollar": "CAD",
    "Australian Dollar": "AUD",
}
_CURRENCY_LOOKUP = {_key(name): code for name, code in CURRENCY_NAMES.items()}


@per_distinct_value
def parse_currency(values: pd.Series) -> Parsed:
    """An ISO 4217 code (any case) or a D365 currency name → upper-case ISO code; three
    letters that are no ISO code (``UDS``) are a bad value, not a new currency."""
    text = _as_text(values)
    blank = _blank(text)
    is_code = (text.str.fullmatch(r"[A-Za-z]{3}").fillna(False)
               & text.str.upper().isin(ISO_4217_CODES).fillna(False))
    named = _label_key(text).map(_CURRENCY_LOOKUP)
    out = text.str.upper().where(is_code, named).astype("str")
    ok = out.notna().to_numpy(dtype=bool)
    return Parsed(out, _mask(text.index, ~blank & ~ok))


# ---------------------------------------------------------------------------------------------
# fields: which parser, which output column and dtype, and what to say about a bad cell


@dataclass(frozen=True)
class FieldParser:
    field: str
    column: str
    kind: str
    dtype: object


_TEXT = "str"
_FIELD_KINDS: tuple[tuple[str, str, str, object], ...] = (
    ("order_id", "order_id", "guid", _TEXT),
    ("order_number", "order_number", "text", _TEXT),
    ("order_name", "order_name", "text", _TEXT),
    ("customer_id", "customer_id", "guid", _TEXT),
    ("customer_name", "customer_name", "text", _TEXT),
    ("currency", "currency_code", "currency", _TEXT),
    ("order_state", "order_state_code", "order_state", "Int64"),
    ("order_status_reason", "order_status_reason_code", "order_status_reason", "Int64"),
    ("payment_terms", "payment_terms", "payment_terms", _TEXT),
    ("line_id", "line_id", "guid", _TEXT),
    ("line_number", "line_number", "integer", "Int64"),
    ("product_number", "product_number", "text", _TEXT),
    ("product_name", "product_name", "text", _TEXT),
    ("write_in_product", "write_in_product", "text", _TEXT),
    ("quantity", "quantity", "quantity", QUANTITY_DTYPE),
    ("unit", "unit", "text", _TEXT),
    ("price_per_unit", "price_per_unit", "money", MONEY_DTYPE),
    ("volume_discount", "volume_discount", "money", MONEY_DTYPE),
    ("manual_discount", "manual_discount", "money", MONEY_DTYPE),
    ("tax", "tax", "money", MONEY_DTYPE),
    ("extended_amount", "extended_amount", "money", MONEY_DTYPE),
    ("contract_type", "contract_type", "contract_type", _TEXT),
    ("billing_frequency", "billing_frequency", "billing_frequency", _TEXT),
    ("contract_product_type", "contract_product_type", "contract_product_type", _TEXT),
    ("process_refunds", "process_refunds", "process_refunds", _TEXT),
    ("billing_contract", "billing_contract", "text", _TEXT),
    ("provision_as", "provision_as", "provision_as", _TEXT),
    ("provisioning_unit", "provisioning_unit", "provisioning_unit", _TEXT),
    ("provision_on", "provision_on", "code", _TEXT),
    ("fulfill_order", "fulfill_order", "boolean", "boolean"),
)
FIELD_PARSERS: dict[str, FieldParser] = {f: FieldParser(f, c, k, d) for f, c, k, d in _FIELD_KINDS}
#: canonical field → column name in the normalised lines frame.
OUTPUT_COLUMN: dict[str, str] = {f: p.column for f, p in FIELD_PARSERS.items()}
#: column name in the normalised lines frame → canonical field.
FIELD_OF_COLUMN: dict[str, str] = {p.column: f for f, p in FIELD_PARSERS.items()}

_OPTION_SETS: dict[str, OptionSet] = {
    options.name: options
    for options in (
        ORDER_STATE,
        ORDER_STATUS_REASON,
        PAYMENT_TERMS,
        CONTRACT_TYPE,
        BILLING_FREQUENCY,
        CONTRACT_PRODUCT_TYPE,
        PROCESS_REFUNDS,
        PROVISION_AS,
        PROVISIONING_UNIT,
    )
}


def parse_field(field: str, values: pd.Series, *, number_locale: str = "en-US") -> Parsed:
    """Parse one column of raw cell text as the canonical ``field``."""
    kind = FIELD_PARSERS[field].kind
    if kind == "text":
        return parse_text(values)
    if kind == "code":
        return parse_code(values)
    if kind == "guid":
        return parse_guid(values)
    if kind == "integer":
        return parse_integer(values)
    if kind == "boolean":
        return parse_boolean(values)
    if kind == "money":
        return parse_money(values, number_locale)
    if kind == "quantity":
        return parse_quantity(values, number_locale)
    if kind == "currency":
        return parse_currency(values)
    return parse_option(values, _OPTION_SETS[kind])


def empty_column(field: str, index: pd.Index) -> pd.Series:
    """The all-NA column of a field the file does not have, in the field's dtype."""
    dtype = FIELD_PARSERS[field].dtype
    if isinstance(dtype, pd.ArrowDtype):
        return pd.Series(pa.nulls(len(index), type=dtype.pyarrow_dtype), index=index, dtype=dtype)
    if dtype == _TEXT:
        return _na_text(index)
    return pd.Series(pd.NA, index=index, dtype=dtype)


def why_bad(field: str, values: pd.Series, *, number_locale: str = "en-US") -> pd.Series:
    """For bad cells of ``field``: the end of the sentence that explains the problem.

    ``"Price Per Unit '1.299,00' " + why`` reads as one sentence. Runs on the bad cells only.
    """
    kind = FIELD_PARSERS[field].kind
    index = values.index
    if kind in ("money", "quantity"):
        arrow_type = MONEY_TYPE if kind == "money" else QUANTITY_TYPE
        _, problem = decimal_text(
            values,
            locale=number_locale,
            scale=arrow_type.scale,
            integer_digits=arrow_type.precision - arrow_type.scale,
            allow_currency=kind == "money",
        )
        example = number_format(number_locale).example
        phrases = {
            PROBLEM_FORMAT: f"is not a number in the {number_locale} format ({example})",
            PROBLEM_PLACES: f"has more than {arrow_type.scale} decimal places",
            PROBLEM_SIZE: "is too large",
        }
        return problem.map(phrases).fillna(phrases[PROBLEM_FORMAT]).astype("str")
    if kind in ("text", "code"):
        found = values.str.extract(f"({CONTROL_CHARACTERS})", expand=False).fillna("")
        return ("contains the control character U+" + found.map(lambda char: f"{ord(char):04X}" if char else "????")
                + ", which an export never holds; remove it").astype("str")
    phrase = {
        "guid": "is not a GUID",
        "integer": "is not a whole number",
        "boolean": "is not Yes, No, True, False, 1 or 0",
        "currency": "is not an ISO 4217 currency code or a D365 currency name (" + ", ".join(CURRENCY_NAMES) + ")",
    }.get(kind)
    if phrase is None:
        phrase = "is not " + _OPTION_SETS[kind].describe() if kind in _OPTION_SETS else "is not valid"
    return pd.Series(phrase, index=index, dtype="str")


__all__ = [
    "FIELD_PARSERS",
    "MONEY_DTYPE",
    "MONEY_SCALE",
    "QUANTITY_DTYPE",
    "QUANTITY_SCALE",
    "NUMBER_FORMATS",
    "OUTPUT_COLUMN",
    "Parsed",
    "parse_boolean",
    "parse_code",
    "parse_currency",
    "parse_date",
    "parse_field",
    "parse_guid",
    "parse_integer",
    "parse_money",
    "parse_option",
    "parse_order_state",
    "parse_payment_terms",
    "parse_quantity",
    "parse_status_reason",
    "parse_text",
    "why_bad",
]
