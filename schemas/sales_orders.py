"""Contracts of sales-order lines between ingest and the domain rules (SPEC §2.1, R9).

``NormalisedLines`` is what ingest returns: one row per input line, every column present
with its dtype, NA where the cell was blank or unreadable. ``ValidLineValues`` is the value
rules a line must meet before any business rule looks at it; it is run lazily by
:func:`w365etl.domain.validation.validate_line_values`, which turns each failure into an
exception row.

pandas 3 note: text columns are the default ``str`` dtype (``pd.StringDtype(na_value=nan)``).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from w365etl.amounts import MONEY_TYPE, QUANTITY_TYPE

Quantity = Annotated[pd.ArrowDtype, QUANTITY_TYPE]
Money = Annotated[pd.ArrowDtype, MONEY_TYPE]

ORDER_STATE_CODES = (0, 1, 2, 3, 4)
ORDER_STATUS_REASON_CODES = (1, 2, 3, 4, 100001, 100002, 100003)
PAYMENT_TERMS = ("Due on Receipt", "Net 30", "2% 10, Net 30", "Net 45", "Net 60")
CONTRACT_TYPES = ("Recurring", "Non-Recurring")
BILLING_FREQUENCIES = ("Monthly", "Quarterly", "Annually", "Triennial")
CONTRACT_PRODUCT_TYPES = ("CSP", "Support Contract", "Managed Services")
PROCESS_REFUNDS = ("Use Global Setting", "Yes", "No")
PROVISION_AS = ("New", "Existing")
PROVISIONING_UNITS = ("Monthly", "Annual")
#: field → the values ValidLineValues accepts (for messages).
ALLOWED_VALUES: dict[str, tuple[object, ...]] = {
    "order_state": ORDER_STATE_CODES,
    "order_status_reason": ORDER_STATUS_REASON_CODES,
    "payment_terms": PAYMENT_TERMS,
    "contract_type": CONTRACT_TYPES,
    "billing_frequency": BILLING_FREQUENCIES,
    "contract_product_type": CONTRACT_PRODUCT_TYPES,
    "process_refunds": PROCESS_REFUNDS,
    "provision_as": PROVISION_AS,
    "provisioning_unit": PROVISIONING_UNITS,
}


class NormalisedLines(pa.DataFrameModel):
    """Ingest's output: provenance, then one parsed column per field of SPEC §2.1."""

    line_index: Series[int] = pa.Field(ge=0, unique=True)
    file_path: Series[str]
    sheet_name: Series[str] = pa.Field(nullable=True)
    row_number: Series[int] = pa.Field(ge=1)
    order_file_path: Series[str]
    order_sheet_name: Series[str] = pa.Field(nullable=True)
    order_row_number: Series[int] = pa.Field(ge=1)
    table_key: Series[str]
    order_table_key: Series[str]
    layout: Series[str] = pa.Field(isin=("flat", "header_lines"))
    dialect: Series[str] = pa.Field(isin=("display", "logical"))

    order_id: Series[str] = pa.Field(nullable=True)
    order_number: Series[str] = pa.Field(nullable=True)
    order_name: Series[str] = pa.Field(nullable=True)
    customer_id: Series[str] = pa.Field(nullable=True)
    customer_name: Series[str] = pa.Field(nullable=True)
    currency_code: Series[str] = pa.Field(nullable=True)
    order_state_code: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    order_status_reason_code: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    payment_terms: Series[str] = pa.Field(nullable=True)
    line_id: Series[str] = pa.Field(nullable=True)
    line_number: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    product_number: Series[str] = pa.Field(nullable=True)
    product_name: Series[str] = pa.Field(nullable=True)
    write_in_product: Series[str] = pa.Field(nullable=True)
    quantity: Series[Quantity] = pa.Field(nullable=True)
    unit: Series[str] = pa.Field(nullable=True)
    price_per_unit: Series[Money] = pa.Field(nullable=True)
    volume_discount: Series[Money] = pa.Field(nullable=True)
    manual_discount: Series[Money] = pa.Field(nullable=True)
    tax: Series[Money] = pa.Field(nullable=True)
    extended_amount: Series[Money] = pa.Field(nullable=True)
    contract_type: Series[str] = pa.Field(nullable=True)
    billing_frequency: Series[str] = pa.Field(nullable=True)
    contract_product_type: Series[str] = pa.Field(nullable=True)
    process_refunds: Series[str] = pa.Field(nullable=True)
    billing_contract: Series[str] = pa.Field(nullable=True)
    provision_as: Series[str] = pa.Field(nullable=True)
    provisioning_unit: Series[str] = pa.Field(nullable=True)
    provision_on: Series[str] = pa.Field(nullable=True)
    fulfill_order: Series[pd.BooleanDtype] = pa.Field(nullable=True)

    class Config:
        strict = True
        ordered = True

    @pa.dataframe_check(name="line_index_is_position")
    def _line_index_is_position(cls, df: pd.DataFrame) -> bool:
        return bool((df["line_index"].to_numpy() == np.arange(len(df))).all())

    @pa.dataframe_check(name="text_columns_are_str")
    def _text_columns_are_str(cls, df: pd.DataFrame) -> bool:
        # pandera lets an object column pass Series[str]; the contract is pandas' str dtype.
        return all(df[name].dtype == "str" for name in TEXT_COLUMNS if name in df)


#: Text columns of NormalisedLines (pandas ``str`` dtype, NA for missing).
TEXT_COLUMNS: tuple[str, ...] = tuple(
    name for name, annotation in NormalisedLines.__annotations__.items() if annotation == "Series[str]"
)


class ValidLineValues(pa.DataFrameModel):
    """Value rules of a line (R9 and SPEC §2.1): required values present, codes in range.

    Checked lazily; each failure becomes one exception row. Check names map to reason codes
    in :mod:`w365etl.domain.validation` (``quantity_positive`` → INVALID_QUANTITY).
    """

    order_number: Series[str] = pa.Field(nullable=False)
    customer_name: Series[str] = pa.Field(nullable=False)
    currency_code: Series[str] = pa.Field(nullable=False, str_matches=r"^[A-Z]{3}$")
    order_state_code: Series[pd.Int64Dtype] = pa.Field(nullable=False, isin=ORDER_STATE_CODES)
    order_status_reason_code: Series[pd.Int64Dtype] = pa.Field(nullable=True, isin=ORDER_STATUS_REASON_CODES)
    payment_terms: Series[str] = pa.Field(nullable=True, isin=PAYMENT_TERMS)
    quantity: Series[Quantity] = pa.Field(nullable=False, gt=0, title="quantity_positive")
    price_per_unit: Series[Money] = pa.Field(nullable=False)
    contract_type: Series[str] = pa.Field(nullable=True, isin=CONTRACT_TYPES)
    billing_frequency: Series[str] = pa.Field(nullable=True, isin=BILLING_FREQUENCIES)
    contract_product_type: Series[str] = pa.Field(nullable=True, isin=CONTRACT_PRODUCT_TYPES)
    process_refunds: Series[str] = pa.Field(nullable=True, isin=PROCESS_REFUNDS)
    provision_as: Series[str] = pa.Field(nullable=True, isin=PROVISION_AS)
    provisioning_unit: Series[str] = pa.Field(nullable=True, isin=PROVISIONING_UNITS)

    class Config:
        strict = False
        coerce = False

    @pa.dataframe_check(name="product_given")
    def _product_given(cls, df: pd.DataFrame) -> pd.Series:
        """At least one of product number / product name has a value (a write-in line has
        neither by nature: it is reported as WRITE_IN_PRODUCT, not as a missing product)."""
        return df["product_number"].notna() | df["product_name"].notna() | df["write_in_product"].notna()
