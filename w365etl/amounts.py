"""Exact amounts and quantities in frames (SPEC §2.1, R8): Arrow decimals, never floats.

Money and quantities travel through every stage as Arrow ``decimal128`` columns: exact like
``Decimal`` but stored column-wise, so arithmetic and comparisons stay vectorised. Precision 18
keeps a product of a quantity and a price (37 digits) inside decimal128's 38.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

QUANTITY_SCALE = 5
MONEY_SCALE = 6
QUANTITY_TYPE = pa.decimal128(18, QUANTITY_SCALE)
MONEY_TYPE = pa.decimal128(18, MONEY_SCALE)
QUANTITY_DTYPE = pd.ArrowDtype(QUANTITY_TYPE)
MONEY_DTYPE = pd.ArrowDtype(MONEY_TYPE)
#: R8: the tolerance of the extended-amount check.
AMOUNT_TOLERANCE = Decimal("0.01")


def decimals_from_text(values: pd.Series, arrow_type: pa.DataType) -> pd.Series:
    """Cast canonical decimal text ("1299.5", "-3") to an Arrow decimal column; blanks become NA.

    The text must already be validated (digits, one optional point, no grouping): this is
    the exact step after parsing, not a parser.
    """
    text = pa.array(values.astype("string").to_numpy(dtype=object, na_value=None), type=pa.string())
    return pd.Series(pc.cast(text, arrow_type), index=values.index, dtype=pd.ArrowDtype(arrow_type))


def decimals_to_text(values: pd.Series) -> pd.Series:
    """Exact canonical text of a decimal column, trailing zeros removed ("12.50000" → "12.5")."""
    dtype = values.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_decimal(dtype.pyarrow_dtype) and dtype.pyarrow_dtype.scale > 0:
        # Arrow writes every digit of the scale ("12.500000"): trimming zeros, then a bare point,
        # is exact and runs in Arrow (a regex per value cost ~1 s per million values)
        text = pc.cast(values.array.__arrow_array__(), pa.string())
        text = pc.utf8_rtrim(pc.utf8_rtrim(text, characters="0"), characters=".")
        return pd.Series(pd.arrays.ArrowStringArray(text), index=values.index, name=values.name)
    text = values.astype("string")
    text = text.str.replace(r"(\.\d*?)0+$", r"\1", regex=True).str.replace(r"\.$", "", regex=True)
    return text


def empty_decimals(index: pd.Index, arrow_type: pa.DataType) -> pd.Series:
    return pd.Series(pa.nulls(len(index), type=arrow_type), index=index, dtype=pd.ArrowDtype(arrow_type))


def units_to_text(units: pd.Series) -> pd.Series:
    """Exact text of quantities held as int64 10⁻⁵ units (12300000 → "123")."""
    units = units.astype("Int64")
    scale = 10**QUANTITY_SCALE
    fraction = (units % scale).astype("string").str.zfill(QUANTITY_SCALE).str.rstrip("0")
    return (units // scale).astype("string") + ("." + fraction).where(fraction != "", "")
