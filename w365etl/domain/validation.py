"""Value rules of a line (SPEC §2.1, R9) as exception rows.

``ValidLineValues`` is run lazily, so every failure of every line is collected; each becomes
one issue row — one per line, field and reason — coded ``INVALID_QUANTITY`` for a quantity
that is not positive and ``INVALID_VALUE`` for everything else. A cell that ingest already
reported (it could not be parsed, so its value is NA) is not reported again as "missing".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pandera.pandas as pa

from schemas.sales_orders import ALLOWED_VALUES, ValidLineValues
from w365etl.amounts import decimals_to_text
from w365etl.ingest.headers import FIELDS, ORDER_LEVEL_FIELDS, PRODUCT_FIELDS
from w365etl.ingest.result import ISSUE_COLUMNS, issues_frame
from w365etl.ingest.values import FIELD_OF_COLUMN, OUTPUT_COLUMN
from w365etl.reasons import ReasonCode

_PRODUCT_CHECK = "product_given"
_NOT_NULL = "not_nullable"


def validate_line_values(
    lines: pd.DataFrame,
    parse_issues: pd.DataFrame | None = None,
    headers: Mapping[str, Mapping[str, str]] | None = None,
) -> pd.DataFrame:
    """Issue rows (the ``issues`` contract of ingest) for lines that break a value rule.

    ``parse_issues`` is ingest's ``issues``: cells named there are skipped. ``headers`` is
    ingest's ``headers`` (table key → field → header text), used to name the column as the
    person sees it; without it the field's display name is used.
    """
    if lines.empty:
        return issues_frame()
    try:
        ValidLineValues.validate(lines, lazy=True)
        return issues_frame()
    except pa.errors.SchemaErrors as caught:
        errors = caught
        cases = errors.failure_cases
    if cases["index"].isna().any():
        # A missing column or a wrong dtype is a bug upstream, not bad data: say so loudly.
        raise errors
    if cases.empty:
        return issues_frame()

    found = pd.DataFrame(
        {
            "position": cases["index"].astype("int64").to_numpy(),
            "column_name": cases["column"].astype("str").to_numpy(),
            "check": cases["check"].astype("str").to_numpy(),
        }
    )
    is_product = (found["check"] == _PRODUCT_CHECK).to_numpy()
    found.loc[is_product, "column_name"] = "product_number"
    found["field"] = found["column_name"].map(FIELD_OF_COLUMN)
    found = found[found["field"].notna()]
    found["reason_code"] = np.where(
        (found["field"] == "quantity") & (found["check"] != _NOT_NULL),
        str(ReasonCode.INVALID_QUANTITY),
        str(ReasonCode.INVALID_VALUE),
    )
    found = found.drop_duplicates(["position", "field", "reason_code"])
    position_of = pd.Series(np.arange(len(lines)), index=lines.index)
    found["position"] = position_of.reindex(found["position"]).to_numpy()
    found = found[_not_reported(found, lines, parse_issues)]
    if found.empty:
        return issues_frame()
    return issues_frame([_issue_rows(found, lines, headers or {})])


def _not_reported(found: pd.DataFrame, lines: pd.DataFrame, parse_issues: pd.DataFrame | None) -> np.ndarray:
    """False for failures on a cell that already has a parse issue (or an order that is missing)."""
    rows = lines.iloc[found["position"].to_numpy()]
    order_level = found["field"].isin(ORDER_LEVEL_FIELDS).to_numpy()
    keep = np.ones(len(found), dtype=bool)
    # A header+lines line whose order was not found carries the "no order" issue; its
    # order fields are not checked one by one.
    orphan = ((rows["layout"] == "header_lines") & (rows["order_table_key"] == rows["table_key"])).to_numpy()
    keep &= ~(order_level & orphan)
    if parse_issues is None or parse_issues.empty:
        return keep
    line_keys = set(
        zip(
            parse_issues["line_index"].dropna().astype("int64"),
            parse_issues.loc[parse_issues["line_index"].notna(), "field"],
            strict=True,
        )
    )
    own = list(zip(rows["line_index"].astype("int64"), found["field"], strict=True))
    keep &= np.array([key not in line_keys for key in own], dtype=bool) if own else keep
    order_issues = parse_issues[parse_issues["line_index"].isna()]
    if not order_issues.empty:
        order_keys = set(
            zip(
                order_issues["file"],
                order_issues["sheet"].fillna(""),
                order_issues["row"].astype("int64"),
                order_issues["field"],
                strict=True,
            )
        )
        via_order = zip(
            rows["order_file_path"],
            rows["order_sheet_name"].fillna(""),
            rows["order_row_number"].astype("int64"),
            found["field"],
            strict=True,
        )
        keep &= np.array([key not in order_keys for key in via_order], dtype=bool)
    return keep


def _issue_rows(found: pd.DataFrame, lines: pd.DataFrame, headers: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    rows = lines.iloc[found["position"].to_numpy()].reset_index(drop=True)
    found = found.reset_index(drop=True)
    order_level = (found["field"].isin(ORDER_LEVEL_FIELDS) & (rows["layout"] == "header_lines")).to_numpy()
    table_key = rows["order_table_key"].where(order_level, rows["table_key"])
    column = pd.Series(np.nan, index=found.index, dtype="str")
    value = pd.Series("", index=found.index, dtype="str")
    message = pd.Series(np.nan, index=found.index, dtype="str")
    for (name, check), group in found.groupby(["field", "check"], sort=False):
        where = group.index
        shown = table_key[where].map({key: _header(headers, key, name) for key in table_key[where].unique()})
        column[where] = shown
        if check == _PRODUCT_CHECK:
            message[where] = "Neither " + shown + " has a value: the line needs a product number or a product name"
            continue
        if check == _NOT_NULL:
            message[where] = shown + " is blank; it is required"
            continue
        cells = rows.loc[where, OUTPUT_COLUMN[name]]
        text = decimals_to_text(cells) if isinstance(cells.dtype, pd.ArrowDtype) else cells.astype("str")
        text = text.fillna("").astype("str")
        value[where] = text
        if name == "quantity":
            message[where] = shown + " '" + text + "' must be greater than 0"
        else:
            message[where] = shown + " '" + text + "' is not " + _allowed(name)
    return pd.DataFrame(
        {
            "line_index": rows["line_index"].astype("Int64"),
            "reason_code": found["reason_code"].astype("str"),
            "field": found["field"].astype("str"),
            "file": rows["order_file_path"].where(order_level, rows["file_path"]),
            "sheet": rows["order_sheet_name"].where(order_level, rows["sheet_name"]),
            "row": rows["order_row_number"].where(order_level, rows["row_number"]).astype("Int64"),
            "column": column,
            "value": value,
            "message": message,
        }
    )[list(ISSUE_COLUMNS)]


def _header(headers: Mapping[str, Mapping[str, str]], table_key: str, name: str) -> str:
    known = headers.get(table_key, {})
    if name == "product_number":
        shown = [known[f] for f in PRODUCT_FIELDS if f in known]
        return " / ".join(shown) if shown else " / ".join(FIELDS[f].label for f in PRODUCT_FIELDS)
    return known.get(name, FIELDS[name].label)


def _allowed(name: str) -> str:
    if name == "currency":
        return "an ISO 4217 currency code (USD, EUR…) or a D365 currency name (US Dollar, Euro…)"
    allowed = ALLOWED_VALUES.get(name)
    if allowed is None:
        return "a valid value"
    return "one of " + ", ".join(str(value) for value in allowed)
