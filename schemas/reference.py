"""Contracts of the reference data (SPEC §2.2): the product catalog and provider account mappings."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

PRODUCT_TYPES = ["CSP", "Support Contract", "Managed Services"]
BILLING_FREQUENCIES = ["Monthly", "Quarterly", "Annually", "Triennial"]
PROVISIONING_UNITS = ["Monthly", "Annual"]
TERM_DURATIONS = ["P1M", "P1Y", "P3Y"]


class Products(pa.DataFrameModel):
    """The catalog, one row per product; recurring products carry their billing defaults."""

    product_number: Series[str] = pa.Field(unique=True)
    product_name: Series[str] = pa.Field(unique=True)
    product_type: Series[str] = pa.Field(isin=PRODUCT_TYPES)
    provider_code: Series[str] = pa.Field(str_matches=r"^[a-z0-9_]+$")
    provider_sku: Series[str] = pa.Field(nullable=True)
    is_recurring: Series[bool]
    billing_frequency: Series[str] = pa.Field(nullable=True, isin=BILLING_FREQUENCIES)
    provisioning_unit: Series[str] = pa.Field(nullable=True, isin=PROVISIONING_UNITS)
    term_duration: Series[str] = pa.Field(nullable=True, isin=TERM_DURATIONS)
    min_quantity: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    max_quantity: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1)

    @pa.dataframe_check(error="min_quantity is greater than max_quantity")
    def bounds_in_order(cls, frame: pd.DataFrame) -> pd.Series:
        both = frame["min_quantity"].notna() & frame["max_quantity"].notna()
        return ~both | (frame["min_quantity"] <= frame["max_quantity"]).fillna(True)

    class Config:
        strict = "filter"


class ProviderAccounts(pa.DataFrameModel):
    """Provider account mappings (R3): a CRM account ↔ the account at the provider."""

    customer_name: Series[str]
    customer_id: Series[str] = pa.Field(nullable=True)
    provider_code: Series[str] = pa.Field(str_matches=r"^[a-z0-9_]+$")
    provider_customer_id: Series[str]

    class Config:
        strict = "filter"
